import { connect, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { JetStreamPublisher, storedSeq } from '../../lib/nats/jetStreamPublisher';
import { requestFields, requestHeaders } from '../../lib/nats/requestHeaders';
import { startNats, type TestBroker } from './brokers';

// The NATS producer's own PubAck handling and the request header block, against a private
// `nats-server -js` (never the machine's own instance).
let broker: TestBroker;
let nc: NatsConnection;
beforeAll(async () => {
  broker = await startNats();
  nc = await connect({ servers: broker.url });
  await (await jetstreamManager(nc)).streams.add({ name: 'pub', subjects: ['pub.>'], retention: RetentionPolicy.Workqueue, storage: StorageType.Memory });
});
afterAll(async () => {
  await nc?.close();
  await broker?.stop();
});

const te = new TextEncoder();
/** The block the client writes: publishing calls encode() on the headers (not in the MsgHdrs type). */
const blockOf = (h: unknown): Uint8Array => (h as { encode(): Uint8Array }).encode();

describe('JetStreamPublisher', () => {
  it('resolves once JetStream stored every message, reports each sequence, and a retry with the same Nats-Msg-Id is stored once', async () => {
    const stored: Array<[string, number]> = [];
    const publisher = new JetStreamPublisher<string>(nc, 'pub.a', (key, seq) => stored.push([key, seq]));
    const message = (id: string) => ({ key: id, body: te.encode(id), headers: requestHeaders({ id, replyTo: 'r', body: new Uint8Array() }, id) });
    await publisher.publish([message('a1'), message('a2'), message('a3')]);
    await publisher.publish([message('a2')]); // the same msgID: a duplicate, acknowledged with its first sequence
    publisher.close();
    expect(stored.slice(0, 3).map(([k]) => k)).toEqual(['a1', 'a2', 'a3']);
    expect(stored[3]).toEqual(['a2', stored[1][1]]);
    expect((await (await jetstreamManager(nc)).streams.info('pub')).state.messages).toBe(3);
  });

  it('reads the sequence of a real PubAck without JSON.parse, and leaves an error or a malformed one to JSON.parse', async () => {
    const h = headers();
    h.set('Nats-Msg-Id', 'b1');
    const first = await nc.request('pub.b', te.encode('x'), { headers: h, timeout: 5000 });
    const again = await nc.request('pub.b', te.encode('x'), { headers: h, timeout: 5000 });
    const seq = (JSON.parse(first.string()) as { seq: number }).seq;
    expect(seq).toBeGreaterThan(0);
    expect(storedSeq(first.data)).toBe(seq);
    expect(storedSeq(again.data)).toBe(seq);
    expect(storedSeq(te.encode('{"error":{"code":503,"err_code":10008,"description":"unavailable"}}'))).toBe(0);
    expect(storedSeq(te.encode('{"stream":"pub","seq":12x}'))).toBe(0);
  });

  it('fails a message JetStream refuses for good at once, with what JetStream said', async () => {
    const publisher = new JetStreamPublisher<string>(nc, 'pub.c', () => undefined);
    // A stream that expects another last sequence refuses: not transient, not retried.
    const h = requestHeaders({ id: 'c1', replyTo: 'r', body: new Uint8Array() }, 'c1');
    const wrongSeq = { encode: () => te.encode(new TextDecoder().decode(blockOf(h)).replace(/\r\n\r\n$/, '\r\nNats-Expected-Last-Sequence: 999999\r\n\r\n')) };
    await expect(publisher.publish([{ key: 'c1', body: te.encode('x'), headers: wrongSeq as never }])).rejects.toThrow(/JetStream refused a publish on pub\.c: wrong last sequence/);
    publisher.close();
  });
});

describe('JetStreamPublisher retries (virtual time, a stand-in connection)', () => {
  /** A connection that records publishes and lets the test answer them. */
  const standIn = () => {
    const published: Array<{ subject: string; reply: string; block: string }> = [];
    let deliver: (msg: Msg) => void = () => undefined;
    const nc = {
      subscribe: (_subject: string, options: { callback: (error: Error | null, msg: Msg) => void }) => {
        deliver = (msg) => options.callback(null, msg);
        return { unsubscribe: () => undefined };
      },
      publish: (subject: string, _body: Uint8Array, options: { reply: string; headers: unknown }) => {
        published.push({ subject, reply: options.reply, block: new TextDecoder().decode(blockOf(options.headers)) });
      },
    } as unknown as NatsConnection;
    const ack = (reply: string, json: string) => deliver({ subject: reply, data: te.encode(json) } as Msg);
    return { nc, published, ack };
  };
  const request = (id: string) => ({ key: id, body: te.encode(id), headers: requestHeaders({ id, replyTo: 'r', body: new Uint8Array() }, id) });
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('publishes an unacknowledged message again after ackTimeoutMs and a back-off, with the same headers; the late acknowledgement settles it', async () => {
    const { nc, published, ack } = standIn();
    const stored: number[] = [];
    const publisher = new JetStreamPublisher<string>(nc, 'pub.t', (_key, seq) => stored.push(seq), { ackTimeoutMs: 1000 });
    const done = publisher.publish([request('t1'), request('t2')]);
    ack(published[1].reply, '{"stream":"pub","seq":2}');
    jest.advanceTimersByTime(999);
    expect(published).toHaveLength(2);
    jest.advanceTimersByTime(1 + 50); // timed out, then the first back-off (50 ms)
    expect(published).toHaveLength(3);
    expect(published[2]).toEqual(published[0]); // t1 again: same reply subject, same Nats-Msg-Id
    expect(published[2].block).toContain('Nats-Msg-Id: t1');
    ack(published[2].reply, '{"stream":"pub","seq":1,"duplicate":true}');
    await expect(done).resolves.toBeUndefined();
    expect(stored).toEqual([2, 1]);
    publisher.close();
  });

  it('gives up after maxRetries with a timeout error, and close() fails what waits at once', async () => {
    const { nc, published } = standIn();
    const publisher = new JetStreamPublisher<string>(nc, 'pub.t', () => undefined, { ackTimeoutMs: 100, maxRetries: 2 });
    const done = publisher.publish([request('u1')]);
    const outcome = done.then(() => 'stored', (e: Error) => e.message);
    jest.advanceTimersByTime(100 + 50 + 100 + 100 + 100);
    expect(published).toHaveLength(3);
    await expect(outcome).resolves.toMatch(/did not acknowledge a publish on pub\.t within 100 ms/);
    const waiting = publisher.publish([request('u2')]);
    publisher.close();
    await expect(waiting).rejects.toThrow(/closed before JetStream acknowledged/);
    jest.advanceTimersByTime(10_000);
    expect(published).toHaveLength(4); // nothing retried after close()
  });
});

describe('request headers', () => {
  const message = { id: 'p.1a', replyTo: '_INBOX.x', body: new Uint8Array(), deadline: 1700000000123, context: new Uint8Array([1, 2, 3]), priority: 2, mac: new Uint8Array(32).fill(9) };

  it('a worker reads every field a producer wrote, from the raw block and through the client’s headers alike', async () => {
    const sub = nc.subscribe('hdr.test', { max: 1 });
    nc.publish('hdr.test', te.encode('body'), { headers: requestHeaders(message, 'p.1a~2') });
    for await (const msg of sub) {
      const expected = { id: 'p.1a', replyTo: '_INBOX.x', deadline: '1700000000123', context: 'AQID', priority: '2', mac: Buffer.alloc(32, 9).toString('base64') };
      expect(requestFields(msg)).toEqual(expected);
      // Without the client's internals: through msg.headers.
      expect(requestFields({ headers: msg.headers })).toEqual(expected);
      expect(msg.headers?.get('Nats-Msg-Id')).toBe('p.1a~2');
      expect(msg.string()).toBe('body');
    }
  });

  it('leaves out what the request does not carry', () => {
    const block = blockOf(requestHeaders({ id: 'q', replyTo: 'r', body: new Uint8Array() }, undefined));
    expect(new TextDecoder().decode(block)).toBe('NATS/1.0\r\nRxb-Id: q\r\nRxb-Reply: r\r\n\r\n');
  });
});
