// Connection events, resend and reconnect options without a broker: a scripted transport or
// the in-memory one (named memory* so the fast unit loop runs it).
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import {
  memoryTransport, remoteBatcher, serveBatches, v8Codec,
  type BatchTransport, type BrokerEvent, type LinkEvent, type ProducerLink, type RequestMessage,
} from '../../lib/remote';
import { reconnectDelays } from '../../lib/remote/brokerEvents';
import { encodeReplies } from '../../lib/remote/wire';

/**
 * A producer-side transport that delivers nothing by itself: the test plays the broker,
 * answering requests and reporting connection events by hand.
 */
function scriptedTransport(withResend: boolean) {
  const sent: RequestMessage[][] = [];
  const resent: RequestMessage[][] = [];
  let onReplies!: (frame: Uint8Array) => void;
  let onEvent!: (event: LinkEvent) => void;
  const transport: BatchTransport = {
    kind: 'scripted',
    async openProducer(_subject, replies, events) {
      onReplies = replies;
      onEvent = events!;
      const link: ProducerLink = {
        replyTo: 'me',
        async send(messages) {
          sent.push([...messages]);
        },
        async close() {},
      };
      if (!withResend) return link;
      return { ...link, async resend(messages) {
        resent.push([...messages]);
        return messages.length - 1; // the transport knows one of them is not read yet
      } };
    },
    openWorker: () => Promise.reject(new Error('no workers here')),
    backlog: async () => ({ waiting: 0, pending: 0 }),
  };
  const answer = (message: RequestMessage): void => onReplies(encodeReplies([[message.id, 'ok', v8Codec.encode(2 * (v8Codec.decode(message.body) as number))]]));
  return { transport, sent, resent, answer, event: (e: LinkEvent) => onEvent(e) };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('broker connection events', () => {
  it('a producer counts drops and returns, and after a resubscribe sends again what is still waiting; a late first answer is dropped', async () => {
    const s = scriptedTransport(true);
    const events: BrokerEvent[] = [];
    const p = remoteBatcher<number, number>(s.transport, 'double', { onBrokerEvent: (e) => events.push(e) });
    const first = p.run(1);
    const second = p.run(2);
    await flush();
    const [batch] = s.sent;
    expect(batch.map((m) => v8Codec.decode(m.body))).toEqual([1, 2]);
    s.answer(batch[0]);
    await expect(first).resolves.toBe(2);
    // The reply of the second was published while the subscription was down: lost.
    s.event({ type: 'disconnected', connection: 'replies', error: new Error('read ECONNRESET') });
    s.event({ type: 'reconnected', connection: 'replies' });
    s.event({ type: 'resubscribed', connection: 'replies' });
    await flush();
    expect(s.resent).toEqual([[batch[1]]]); // only what still waits, the same message (id, signature)
    s.answer(batch[1]);
    s.answer(batch[1]); // the original answer, late: a duplicate
    await expect(second).resolves.toBe(4);
    expect(p.stats()).toMatchObject({ disconnects: 1, reconnects: 1, resubscribes: 1, resent: 0, duplicatesDropped: 1, succeeded: 2 });
    expect(events.map(({ type, connection, transport, subject, resent, error }) => ({ type, connection, transport, subject, resent, error: error?.message }))).toEqual([
      { type: 'disconnected', connection: 'replies', transport: 'scripted', subject: 'double', resent: undefined, error: 'read ECONNRESET' },
      { type: 'reconnected', connection: 'replies', transport: 'scripted', subject: 'double', resent: undefined, error: undefined },
      { type: 'resubscribed', connection: 'replies', transport: 'scripted', subject: 'double', resent: 0, error: undefined },
    ]);
    await p.stop();
  });

  it('a transport without resend gets the waiting requests through send', async () => {
    const s = scriptedTransport(false);
    const p = remoteBatcher<number, number>(s.transport, 'double', { onBrokerEvent: () => { throw new Error('a throwing handler is ignored'); } });
    const call = p.run(5);
    await flush();
    s.event({ type: 'resubscribed', connection: 'replies' });
    await flush();
    expect(s.sent).toHaveLength(2);
    expect(s.sent[1]).toEqual(s.sent[0]);
    s.answer(s.sent[1][0]);
    await expect(call).resolves.toBe(10);
    expect(p.stats()).toMatchObject({ resubscribes: 1, resent: 1 });
    await p.stop();
  });

  it('a worker counts its link’s drops and returns and reports them', async () => {
    const base = memoryTransport();
    let onEvent: ((event: LinkEvent) => void) | undefined;
    const transport: BatchTransport = { ...base, openWorker: (subject, options) => ((onEvent = options.onEvent), base.openWorker(subject, options)) };
    const events: BrokerEvent[] = [];
    const w = await serveBatches<number, number>(transport, 'double', (xs) => xs, { maxBatchSize: 4, onBrokerEvent: (e) => events.push(e) });
    onEvent!({ type: 'disconnected', connection: 'pull' });
    onEvent!({ type: 'reconnected', connection: 'pull' });
    expect(w.stats()).toMatchObject({ disconnects: 1, reconnects: 1 });
    expect(events.map((e) => [e.type, e.connection, e.transport, e.subject])).toEqual([['disconnected', 'pull', 'memory', 'double'], ['reconnected', 'pull', 'memory', 'double']]);
    await w.stop();
  });

  it('validates onBrokerEvent like every option', async () => {
    expect(() => remoteBatcher(memoryTransport(), 's', { onBrokerEvent: 'log' as never })).toThrow(
      new TypeError('[rx-batcher] "s": `onBrokerEvent` must be a function (event) => void, got "log" (string).'),
    );
    await expect(serveBatches(memoryTransport(), 's', (xs) => xs, { maxBatchSize: 1, onBrokerEvent: 1 as never })).rejects.toThrow(TypeError);
  });
});

describe('reconnect delays', () => {
  it('start within tens of milliseconds, double, and stop at the cap', () => {
    const d = reconnectDelays('t', {});
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => d.after(n))).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    expect(reconnectDelays('t', { reconnectDelayMs: 5, maxReconnectDelayMs: 30 }).after(4)).toBe(30);
    expect(reconnectDelays('t', { reconnectDelayMs: 2000 }).maxMs).toBe(2000);
  });

  it('are validated by both transports with typed errors naming the option and the value', () => {
    expect(() => redisTransport({ reconnectDelayMs: '20' as never })).toThrow(TypeError);
    expect(() => redisTransport({ reconnectDelayMs: '20' as never })).toThrow('`reconnectDelayMs` must be a number of milliseconds from 1 to 60000, got "20" (string).');
    expect(() => redisTransport({ reconnectDelayMs: 0 })).toThrow(RangeError);
    expect(() => natsTransport({ maxReconnectDelayMs: Infinity })).toThrow(/`maxReconnectDelayMs` must be a number of milliseconds from 1 to 60000, got Infinity \(number\)\. Keep the first retry within tens of milliseconds/);
    expect(() => natsTransport({ reconnectDelayMs: 500, maxReconnectDelayMs: 100 })).toThrow(
      new RangeError('[rx-batcher] "natsTransport": `maxReconnectDelayMs` (100) must be at least `reconnectDelayMs` (500): it caps the doubling delay between reconnection attempts.'),
    );
  });
});
