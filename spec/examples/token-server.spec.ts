/**
 * examples/token-server end to end: the server on a real port, real HTTP clients (node:http)
 * reading server-sent events as they arrive. The generator runs on real timers, made fast
 * (1 ms per step) so the tests take little time; the assertions are about what each client
 * received, never about how long it took.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { expectedText, SimulatedGenerator } from '../../examples/token-server/generator';
import { startTokenServer, type TokenServer } from '../../examples/token-server/server';
import { waitFor } from './helpers-wait';

/** One SSE client: the events it has read so far, as they arrive. */
interface Client {
  readonly request: ClientRequest;
  status: number | undefined;
  headers: IncomingMessage['headers'];
  tokens: string[];
  events: { event: string; data: string }[];
  body: string;
  ended: boolean;
  closed: Promise<void>;
}

function connect(url: string): Client {
  const client = { status: undefined, headers: {}, tokens: [], events: [], body: '', ended: false } as unknown as Client;
  let pending = '';
  let resolveClosed!: () => void;
  client.closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const request = httpRequest(url, (res) => {
    client.status = res.statusCode;
    client.headers = res.headers;
    res.setEncoding('utf8');
    res.on('data', (text: string) => {
      client.body += text;
      pending += text;
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
        client.events.push({ event, data });
        if (event === 'message') client.tokens.push(JSON.parse(data) as string);
      }
    });
    res.on('end', () => {
      client.ended = true;
      resolveClosed();
    });
    res.on('error', () => resolveClosed());
  });
  request.on('error', () => resolveClosed());
  request.end();
  (client as { request: ClientRequest }).request = request;
  return client;
}

const generate = (server: TokenServer, prompt: string, maxTokens: number): string => `${server.url}/generate?prompt=${encodeURIComponent(prompt)}&maxTokens=${maxTokens}`;

describe('examples/token-server: server-sent events from a continuously batched generator', () => {
  let server: TokenServer;
  afterEach(async () => {
    await server?.shutdown();
  });

  it('streams each of several concurrent clients its own tokens, as they are produced, from one shared batch', async () => {
    server = await startTokenServer({ generator: new SimulatedGenerator({ stepMs: 1, perItemMs: 0 }) });
    const asks = [
      { prompt: 'Once upon a time', maxTokens: 120 },
      { prompt: 'Hello', maxTokens: 3 },
      { prompt: 'The quick brown fox', maxTokens: 40 },
      { prompt: 'Streaming', maxTokens: 1 },
      { prompt: 'Batching', maxTokens: 75 },
    ];
    const clients = asks.map((a) => connect(generate(server, a.prompt, a.maxTokens)));
    // The long one is still streaming, token by token, while the short ones are done.
    await waitFor(() => clients[1].ended && clients[3].ended, 'the short outputs to finish');
    expect(clients[0].ended).toBe(false);
    expect(clients[0].tokens.length).toBeGreaterThan(0);
    await Promise.all(clients.map((c) => c.closed));
    for (const [i, client] of clients.entries()) {
      expect(client.status).toBe(200);
      expect(client.headers['content-type']).toBe('text/event-stream');
      expect(client.tokens.join('')).toBe(expectedText(asks[i]));
      expect(client.tokens).toHaveLength(asks[i].maxTokens);
      expect(client.events.at(-1)).toEqual({ event: 'done', data: '{}' });
    }
    const stats = server.stats();
    expect(stats).toMatchObject({ succeeded: 5, chunks: 239, inFlight: 0, queued: 0 });
    // They shared steps: far fewer steps than tokens.
    expect(stats.steps).toBeLessThan(stats.chunks);
  });

  it('a client that disconnects mid-stream is retired from the batch (its state released), and the others are unaffected', async () => {
    const generator = new SimulatedGenerator({ stepMs: 2, perItemMs: 0 });
    server = await startTokenServer({ generator });
    const leaver = connect(generate(server, 'I will leave', 1000));
    const stayers = [connect(generate(server, 'I stay', 150)), connect(generate(server, 'Me too', 60))];
    await waitFor(() => leaver.tokens.length >= 5, 'the leaving client to read a few tokens');
    leaver.request.destroy();
    await waitFor(() => generator.cutShort.length === 1, 'its item to leave the batch');
    expect(generator.cutShort[0]).toEqual({ prompt: 'I will leave', maxTokens: 1000 });
    await waitFor(() => server.stats().cancelled === 1, 'its call to settle as cancelled');
    await Promise.all(stayers.map((c) => c.closed));
    expect(stayers.map((c) => c.tokens.join(''))).toEqual([expectedText({ prompt: 'I stay', maxTokens: 150 }), expectedText({ prompt: 'Me too', maxTokens: 60 })]);
    expect(server.stats()).toMatchObject({ succeeded: 2, cancelled: 1, inFlight: 0 });
    expect(generator.released).toBe(3);
  });

  it('answers 400 for bad parameters and 503 with Retry-After when the queue is full, before any event', async () => {
    const generator = new SimulatedGenerator({ stepMs: 2, perItemMs: 0 });
    server = await startTokenServer({ generator, maxBatchSize: 1, maxQueueSize: 1 });
    const bad = connect(`${server.url}/generate?prompt=x&maxTokens=0`);
    await bad.closed;
    expect([bad.status, bad.body]).toEqual([400, 'maxTokens must be an integer from 1 to 1000']);
    const running = connect(generate(server, 'first', 200));
    await waitFor(() => running.tokens.length > 0, 'the first stream to start');
    const waiting = connect(generate(server, 'second', 2));
    await waitFor(() => server.stats().queued === 1, 'the second request to queue');
    const refused = connect(generate(server, 'third', 2));
    await refused.closed;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.body).toMatch(/^QueueFullError/);
    running.request.destroy();
    await waiting.closed;
    expect(waiting.tokens.join('')).toBe(expectedText({ prompt: 'second', maxTokens: 2 }));
  });

  it('shutdown lets streams in progress finish, and refuses new ones', async () => {
    server = await startTokenServer({ generator: new SimulatedGenerator({ stepMs: 1, perItemMs: 0 }) });
    const client = connect(generate(server, 'finishing', 50));
    await waitFor(() => client.tokens.length > 0, 'the stream to start');
    const stopping = server.shutdown();
    const late = connect(generate(server, 'too late', 5));
    await late.closed;
    expect(late.status).toBeUndefined(); // no longer listening: the connection is refused
    await client.closed;
    await stopping;
    expect(client.tokens.join('')).toBe(expectedText({ prompt: 'finishing', maxTokens: 50 }));
    expect(server.stats().stopped).toBe(true);
  });
});
