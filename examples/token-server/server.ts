import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BatcherStoppedError,
  QueueFullError,
  RequestTimeoutError,
  StreamBufferFullError,
  StreamingBatcher,
  type StreamingBatcherStats,
} from 'rx-batcher';
import { SimulatedGenerator, type GenerateRequest } from './generator';

/**
 * Options of {@link startTokenServer}.
 *
 * @example
 * ```ts
 * const options: TokenServerOptions = { port: 8080, maxBatchSize: 64, maxQueueSize: 256 };
 * ```
 */
export interface TokenServerOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** The model; a {@link SimulatedGenerator} with its defaults (5 ms + 0.05 ms per item per step) unless given. */
  readonly generator?: SimulatedGenerator;
  /** Outputs advanced together, one token each per step. @default 64 */
  readonly maxBatchSize?: number;
  /** Requests allowed to wait for a place; more are answered 503 at once. @default 256 */
  readonly maxQueueSize?: number;
  /** The longest a whole generation may take, from the request's arrival. @default 60000 */
  readonly timeoutMs?: number;
  /** Tokens a slow client may fall behind before its stream is ended (see the recipe). @default 256 */
  readonly maxBufferedChunks?: number;
  /** The most tokens one request may ask for. @default 1000 */
  readonly maxTokensLimit?: number;
}

/**
 * A running token server: its URL, its batcher's stats, and a graceful shutdown.
 *
 * @example
 * ```ts
 * const server = await startTokenServer();
 * console.log(server.url, server.stats().chunks);
 * await server.shutdown();
 * ```
 */
export interface TokenServer {
  readonly url: string;
  readonly generator: SimulatedGenerator;
  stats(): StreamingBatcherStats;
  /** Stops taking requests, lets every stream in progress finish, then closes. */
  shutdown(): Promise<void>;
}

/**
 * Streams generated tokens over HTTP as server-sent events, with continuous batching: every
 * connection's request joins the generator's running batch at its next step, and leaves it as
 * soon as its output is done or its client has gone.
 *
 * `GET /generate?prompt=…&maxTokens=…` answers `text/event-stream`: one `data:` event per token
 * (a JSON string), then `event: done`. Before the first token an error is a plain status: 400
 * (bad parameters), 503 with `Retry-After` (queue full, or shutting down), 504 (deadline). After
 * it, an `event: error` closes the stream. `GET /stats` answers the batcher's stats as JSON.
 *
 * @example
 * ```ts
 * const server = await startTokenServer({ port: 8080 });
 * // curl -N 'localhost:8080/generate?prompt=Hello&maxTokens=20'
 * ```
 */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const generator = options.generator ?? new SimulatedGenerator();
  const maxTokensLimit = options.maxTokensLimit ?? 1000;
  const llm = new StreamingBatcher<GenerateRequest, string>({
    name: 'tokens',
    maxBatchSize: options.maxBatchSize ?? 64,
    maxQueueSize: options.maxQueueSize ?? 256,
    timeoutMs: options.timeoutMs ?? 60_000,
    maxBufferedChunks: options.maxBufferedChunks ?? 256,
    continuous: generator.continuous,
  });

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/generate') {
      const request = parseRequest(url, maxTokensLimit);
      if (typeof request === 'string') return plain(res, 400, request);
      void streamTokens(llm, request, res);
    } else if (req.method === 'GET' && url.pathname === '/stats') {
      plain(res, 200, JSON.stringify(llm.stats()), 'application/json');
    } else {
      plain(res, 404, 'GET /generate?prompt=…&maxTokens=… or GET /stats');
    }
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    generator,
    stats: () => llm.stats(),
    shutdown: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await llm.stop({ drain: true }); // streams in progress finish; new requests get 503
      server.closeIdleConnections();
      await closed;
    },
  };
}

/** One client's generation, token by token, until it is done or the client goes away. */
async function streamTokens(llm: StreamingBatcher<GenerateRequest, string>, request: GenerateRequest, res: ServerResponse): Promise<void> {
  // The client closing its connection aborts the request: its item leaves the batch at the next step.
  const gone = new AbortController();
  res.once('close', () => gone.abort(new Error('the client closed the connection')));
  let started = false;
  try {
    for await (const token of llm.stream(request, { signal: gone.signal })) {
      if (!started) {
        started = true;
        res.writeHead(200, SSE_HEADERS);
      }
      // A client slower than the model: wait for its socket. Meanwhile tokens wait in the
      // stream's buffer (maxBufferedChunks); beyond it this client's stream ends, not its batch.
      if (!res.write(`data: ${JSON.stringify(token)}\n\n`)) await once(res, 'drain', { signal: gone.signal });
    }
    if (!started) res.writeHead(200, SSE_HEADERS);
    res.end(`event: done\ndata: {}\n\n`);
  } catch (error) {
    if (gone.signal.aborted) return; // nobody to tell
    if (started) {
      res.end(`event: error\ndata: ${JSON.stringify(describe(error))}\n\n`);
      return;
    }
    const [status, headers] = statusOf(error);
    plain(res, status, describe(error), 'text/plain', headers);
  }
}

/** One stream per connection: it closes when the stream ends, so a shutdown waits for no idle socket. */
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' } as const;

function statusOf(error: unknown): [number, Record<string, string>] {
  if (error instanceof QueueFullError || error instanceof BatcherStoppedError) return [503, { 'retry-after': '1' }];
  if (error instanceof RequestTimeoutError) return [504, {}];
  if (error instanceof StreamBufferFullError) return [503, {}];
  if (error instanceof RangeError || error instanceof TypeError) return [400, {}];
  return [500, {}];
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function parseRequest(url: URL, maxTokensLimit: number): GenerateRequest | string {
  const prompt = url.searchParams.get('prompt');
  const maxTokens = Number(url.searchParams.get('maxTokens') ?? '32');
  if (prompt === null || prompt.length === 0) return 'give a prompt: /generate?prompt=…&maxTokens=…';
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > maxTokensLimit) return `maxTokens must be an integer from 1 to ${maxTokensLimit}`;
  return { prompt, maxTokens };
}

function plain(res: ServerResponse, status: number, body: string, type = 'text/plain', headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, ...headers });
  res.end(body);
}
