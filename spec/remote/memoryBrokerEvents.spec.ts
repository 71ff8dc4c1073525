// Connection events, resend and reconnect options without a broker: a scripted transport or
// the in-memory one (named memory* so the fast unit loop runs it).
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import { memoryTransport, remoteBatcher, serveBatches, v8Codec, type BatchTransport, type BrokerEvent, type LinkEvent } from '../../lib/remote';
import { reconnectDelays } from '../../lib/remote/brokerEvents';
import { scriptedTransport } from './support/scriptedTransport';
import { afterSend } from '../helpers/virtualClock';

// The producer's sends leave at the end of the turn: let that turn end.
const flush = afterSend;

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

  it("a producer's stats$ emits when a connection drops or returns, when requests are sent again and when a duplicate is dropped", async () => {
    const s = scriptedTransport(true);
    const p = remoteBatcher<number, number>(s.transport, 'double');
    const seen: { disconnects: number; reconnects: number; resubscribes: number; resent: number; duplicatesDropped: number }[] = [];
    const watching = p.stats$.subscribe(({ disconnects, reconnects, resubscribes, resent, duplicatesDropped }) =>
      seen.push({ disconnects, reconnects, resubscribes, resent, duplicatesDropped }));
    const pending = [p.run(1), p.run(2), p.run(3)];
    await flush();
    const [batch] = s.sent;
    const before = seen.length;
    s.event({ type: 'disconnected', connection: 'replies', error: new Error('read ECONNRESET') });
    s.event({ type: 'reconnected', connection: 'replies' });
    s.event({ type: 'resubscribed', connection: 'replies' });
    await flush();
    for (const m of batch) s.answer(m);
    s.answer(batch[0]);
    await Promise.all(pending);
    const connectionSnapshots = seen.slice(before).filter((x, i, all) => i === 0 || JSON.stringify(x) !== JSON.stringify(all[i - 1]));
    expect(connectionSnapshots).toEqual([
      { disconnects: 1, reconnects: 0, resubscribes: 0, resent: 0, duplicatesDropped: 0 },
      { disconnects: 1, reconnects: 1, resubscribes: 0, resent: 0, duplicatesDropped: 0 },
      { disconnects: 1, reconnects: 1, resubscribes: 1, resent: 0, duplicatesDropped: 0 },
      { disconnects: 1, reconnects: 1, resubscribes: 1, resent: 2, duplicatesDropped: 0 },
      { disconnects: 1, reconnects: 1, resubscribes: 1, resent: 2, duplicatesDropped: 1 },
    ]);
    watching.unsubscribe();
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
