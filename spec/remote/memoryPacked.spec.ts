/**
 * memoryTransport stores one packed entry per send, as the Redis and NATS transports do, and
 * its worker links run the packed-entry ledger (PackedEntries). These cases pin what a broker
 * does per entry (delivery, delivery count, claim, renewal, takeover, hand-back) and what a
 * worker link does per request, on raw links and a manual clock.
 */
import { memoryTransport, v8Codec, type Delivery, type RequestMessage } from '../../lib/remote';
import { ManualScheduler } from '../helpers/manualScheduler';

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
