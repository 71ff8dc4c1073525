/**
 * memoryTransport stores one packed entry per send, as the Redis and NATS transports do, and
 * its worker links run the packed-entry ledger (PackedEntries). These cases pin what a broker
 * does per entry (delivery, delivery count, claim, renewal, takeover, hand-back) and what a
 * worker link does per request, on raw links and a manual clock.
 */
import { timer, VirtualTimeScheduler } from 'rxjs';
import { memoryTransport, remoteBatcher, serveBatches, v8Codec, type BatchWorker, type Delivery, type RequestMessage } from '../../lib/remote';
import { ManualScheduler } from '../helpers/manualScheduler';
import { outcome } from '../helpers/recording';
import { advanceVirtualClock as advance } from '../helpers/virtualClock';

const CLAIM_MS = 100;

async function broker(count: number, extra: (i: number) => Partial<RequestMessage> = () => ({})) {
  const clock = new ManualScheduler();
  const transport = memoryTransport({ scheduler: clock });
  const producer = await transport.openProducer('s', () => undefined);
  const messages = Array.from({ length: count }, (_, i): RequestMessage => ({ id: `r${i}`, replyTo: producer.replyTo, body: v8Codec.encode(i), ...extra(i) }));
  await producer.send(messages);
  const worker = () => transport.openWorker('s', { claimIdleMs: CLAIM_MS, maxDeliveries: 5 });
  return { clock, transport, producer, messages, worker };
}

const ids = (ds: readonly Delivery[]): string[] => ds.map((d) => d.id);
const counts = (ds: readonly Delivery[]): number[] => ds.map((d) => d.deliveries);

describe('memoryTransport: one packed entry per send', () => {
  it('carries every field of every request of a send through the packet, in order', async () => {
    const mac = new Uint8Array(32).fill(9);
    const { messages, worker } = await broker(3, (i) => (i === 1 ? { deadline: 1234.5, priority: -2, context: v8Codec.encode({ t: 'x' }), mac } : {}));
    const got = await (await worker()).pull(10, false);
    const plain = (m: RequestMessage) => ({
      id: m.id, replyTo: m.replyTo, body: Array.from(m.body), deadline: m.deadline, priority: m.priority,
      context: m.context && Array.from(m.context), mac: m.mac && Array.from(m.mac),
    });
    expect(got.map(plain)).toEqual(messages.map(plain));
    expect(got.map((d) => [d.deliveries, d.reclaimed])).toEqual([[1, false], [1, false], [1, false]]);
  });

  it('delivers an entry whole: what a pull has no room for waits in the link, pending at the broker, and comes first next time', async () => {
    const { transport, producer, worker } = await broker(5);
    const link = await worker();
    expect(ids(await link.pull(2, false))).toEqual(['r0', 'r1']);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 5 });
    const other = await worker();
    expect(await other.pull(10, false)).toEqual([]); // nothing else is there: the entry is the first link's
    await producer.send([{ id: 'later', replyTo: producer.replyTo, body: v8Codec.encode(9) }]);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 1, pending: 5 });
    expect(ids(await link.pull(4, false))).toEqual(['r2', 'r3', 'r4', 'later']);
    expect(ids(await link.pullFresh!(4))).toEqual([]);
  });

  it('acknowledges an entry when its last request is answered, counting requests in the backlog', async () => {
    const { transport, worker } = await broker(3);
    const link = await worker();
    const first = await link.pull(2, false);
    await link.ack(first.slice(0, 1));
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 3 });
    const rest = await link.pull(2, false);
    await link.finish!([], [...first.slice(1), ...rest]);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('renews the claim on an entry for any of its requests, held ones included; an unrenewed entry is taken over whole, one delivery counted', async () => {
    const { clock, worker } = await broker(4);
    const a = await worker();
    const running = await a.pull(1, false);
    const b = await worker();
    clock.advance(CLAIM_MS - 1);
    await a.touch(running); // renews the entry: its three held requests too
    clock.advance(CLAIM_MS - 1);
    expect(await b.pull(10, false)).toEqual([]);
    clock.advance(1);
    const taken = await b.pull(10, false);
    expect(ids(taken)).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(taken.map((d) => [d.deliveries, d.reclaimed])).toEqual([[2, true], [2, true], [2, true], [2, true]]);
  });
});

describe('memoryTransport: a link that lost its claim on an entry leaves it to the new holder', () => {
  it('its late release neither hands the entry back nor appends its requests again, and its close leaves the held rest', async () => {
    const { clock, transport, worker } = await broker(3);
    const a = await worker();
    const mine = await a.pull(1, false); // holds r1, r2 in the link
    clock.advance(CLAIM_MS);
    const b = await worker();
    const taken = await b.pull(10, false);
    expect(counts(taken)).toEqual([2, 2, 2]);
    await a.release(mine);
    await a.close();
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 3 });
    const c = await worker();
    expect(await c.pull(10, false)).toEqual([]); // not handed back under the new holder's feet: no delivery charged
    await b.ack(taken);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('its late answers acknowledge nothing: the entry stays with its new holder, and is taken over again if that one dies', async () => {
    const { clock, transport, worker } = await broker(2);
    const a = await worker();
    const mine = await a.pull(10, false);
    clock.advance(CLAIM_MS);
    const b = await worker();
    expect(counts(await b.pull(10, false))).toEqual([2, 2]);
    await a.ack(mine); // a answered both: duplicates of what b runs, harmless
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 2 });
    clock.advance(CLAIM_MS); // b dies
    const c = await worker();
    expect(counts(await c.pull(10, false))).toEqual([3, 3]);
  });
});

describe('memoryTransport: workers over packed entries (virtual time)', () => {
  /** Stops a worker, moving the clock until it has. */
  const stopped = async (clock: VirtualTimeScheduler, w: BatchWorker, drain: boolean): Promise<void> => {
    let done = false;
    void w.stop({ drain }).then(() => (done = true));
    for (let i = 0; i < 100 && !done; i++) await advance(clock, 10);
    expect(done).toBe(true);
  };

  // What a link read beyond its worker's room was never run: handing it back on a draining stop
  // must not count a delivery, or with maxDeliveries 1 its caller got DeliveriesExhausted
  // ("delivered 2 times … never answered") from the next worker without any run.
  it('a draining stop hands back what its link held of an entry uncharged: the next worker runs it on its first delivery', async () => {
    const clock = new VirtualTimeScheduler();
    const t = memoryTransport({ scheduler: clock });
    const p = remoteBatcher<number, number>(t, 's', { scheduler: clock });
    const calls = [1, 2, 3, 4, 5].map((x) => outcome(p.run(x)));
    await advance(clock, 0);
    const slowly = (xs: readonly number[]) => new Promise<number[]>((resolve) => timer(10, clock).subscribe(() => resolve(xs.map((x) => 2 * x))));
    const first = await serveBatches<number, number>(t, 's', slowly, { scheduler: clock, maxBatchSize: 2, maxDeliveries: 1 });
    await advance(clock, 0);
    expect(first.stats()).toMatchObject({ pulled: 4, inFlight: 2, queued: 2 }); // one batch running, one fetched ahead; the fifth waits in the link
    await stopped(clock, first, true);
    expect(calls.map((c) => c.value)).toEqual([2, 4, 6, 8, undefined]);
    await expect(t.backlog('s')).resolves.toEqual({ waiting: 1, pending: 0 });
    const next = await serveBatches<number, number>(t, 's', (xs) => xs.map((x) => 2 * x), { scheduler: clock, maxBatchSize: 8, maxDeliveries: 1 });
    await advance(clock, 0);
    expect(calls[4].value).toBe(10);
    expect(next.stats()).toMatchObject({ pulled: 1, redeliveries: 0, exhausted: 0, succeeded: 1 });
    await expect(t.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
    await stopped(clock, next, true);
  });
});

describe('memoryTransport: a redelivered entry a pull may not run whole is cut, never run in part', () => {
  it('a crash after running the first part of a cut entry brings back only that part: each request in one entry, charged only its own deliveries', async () => {
    const { clock, transport } = await broker(3);
    const link = () => transport.openWorker('s', { claimIdleMs: CLAIM_MS, maxDeliveries: 5, redeliveryCap: (d) => (d <= 1 ? Infinity : 2) });
    const a = await link();
    expect(counts(await a.pull(10, false))).toEqual([1, 1, 1]);
    clock.advance(CLAIM_MS); // a dies
    const b = await link();
    const part = await b.pull(10, false);
    // Taken over on its second delivery, the entry may not run whole (cap 2): cut into [r0, r1]
    // and [r2], appended as they were before this delivery, the entry acknowledged; the first part read and handed out whole.
    expect(part.map((d) => [d.id, d.deliveries])).toEqual([['r0', 2], ['r1', 2]]);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 1, pending: 2 });
    clock.advance(CLAIM_MS); // b dies holding r0, r1
    const c = await link();
    const all = [...(await c.pull(10, false)), ...(await c.pull(10, false)), ...(await c.pull(10, false))];
    // r2 was never run: once, on its second delivery. (Had b run part of the entry and moved r2,
    // the entry would come back whole: r2 twice, once charged a delivery it never ran.)
    expect(all.map((d) => [d.id, d.deliveries])).toEqual([['r0', 3], ['r1', 3], ['r2', 2]]);
    await c.ack(all);
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
  });
});
