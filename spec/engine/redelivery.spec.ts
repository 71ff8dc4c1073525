/**
 * Redelivered requests run in smaller batches (lib/core/redelivery.ts): the cap schedule, the
 * partition honouring a request's `batchCap`, and the in-memory transport taking no more
 * redelivered requests than one such batch holds. The end-to-end case (a worker that dies on
 * one input) is in the transport contract suite (spec/remote/contract.ts).
 */
import { BatchEngine } from '../../lib/core/batchEngine';
import { Partition } from '../../lib/core/partition';
import { redeliveryCap } from '../../lib/core/redelivery';
import { EngineRequest, QUEUED, RequestExtras } from '../../lib/core/request';
import { BATCHER_FACE, normalizeOptions } from '../../lib/options/normalizeOptions';
import { memoryTransport, v8Codec } from '../../lib/remote';
import { ManualScheduler } from '../helpers/manualScheduler';

class Req<T = number> extends EngineRequest<T, T> {
  deliver(): void {}
}

/** A request with a batch cap, as a worker makes for a redelivered one. */
function capped(input: string, cap: number): Req<string> {
  const r = new Req<string>(input);
  (r.extras = new RequestExtras(undefined, 0)).batchCap = cap;
  return r;
}

function queue(caps: number[]): Partition<number, number> {
  const p = new Partition<number, number>(undefined, { windowExpired: () => undefined });
  caps.forEach((cap, i) => {
    const r = new Req<number>(i);
    r.id = i + 1;
    r.state = QUEUED;
    if (cap !== Infinity) (r.extras = new RequestExtras(undefined, 0)).batchCap = cap;
    p.push(r);
  });
  return p;
}

describe('redelivered requests run in smaller batches', () => {
  it('halves the batch per delivery and runs the last allowed delivery alone', () => {
    expect([1, 2, 3, 4, 5, 6].map((d) => redeliveryCap(d, 5, 64))).toEqual([Infinity, 32, 16, 8, 1, 1]);
    expect([1, 2, 3].map((d) => redeliveryCap(d, 3, 64))).toEqual([Infinity, 32, 1]);
    expect([2, 3, 4].map((d) => redeliveryCap(d, 10, 4))).toEqual([2, 1, 1]);
  });

  it('a queue cuts a batch at the smallest cap of its requests, never skipping ahead', () => {
    const p = queue([Infinity, Infinity, 2, Infinity, 1, Infinity, Infinity]);
    const cut = (): number[] => p.take(8).map((r) => r.input);
    expect(cut()).toEqual([0, 1]); // 2 (cap 2) would make it 3: it starts the next batch
    expect(cut()).toEqual([2, 3]);
    expect(cut()).toEqual([4]); // alone
    expect(cut()).toEqual([5, 6]);
  });

  it('with dedupeBy, a redelivered request that joins a waiting input caps the batch that input runs in', () => {
    const scheduler = new ManualScheduler();
    const batches: string[][] = [];
    const runBatch = (xs: readonly string[]): string[] => (batches.push([...xs]), [...xs]);
    const config = normalizeOptions<string, string>({ maxBatchSize: 8, maxDelayMs: 10, dedupeBy: (x: string) => x, scheduler }, runBatch, BATCHER_FACE);
    const engine = new BatchEngine<string, string>(config);
    for (const x of ['k', 'a', 'b', 'c', 'd', 'e']) engine.submit(new Req<string>(x));
    engine.submit(capped('k', 2)); // redelivered: it joins the input 'k' that waits
    scheduler.advance(10);
    expect(batches).toEqual([['k', 'a'], ['b', 'c', 'd', 'e']]);
    engine.dispose();
  });

  it('the in-memory transport takes over no more redelivered requests than one batch of them holds', async () => {
    const scheduler = new ManualScheduler();
    const transport = memoryTransport({ scheduler });
    const producer = await transport.openProducer('s', () => undefined);
    await producer.send(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, replyTo: producer.replyTo, body: v8Codec.encode(i) })));
    const dead = await transport.openWorker('s', { claimIdleMs: 100, maxDeliveries: 5 });
    expect(await dead.pull(10, false)).toHaveLength(10); // then it "crashes"
    scheduler.advance(100);
    const cap = (d: number): number => redeliveryCap(d, 5, 8);
    const next = await transport.openWorker('s', { claimIdleMs: 100, maxDeliveries: 5, redeliveryCap: cap });
    const first = await next.pull(10, false);
    // Taken over, the entry of ten may not run whole (cap 4): cut into entries of 4, 4 and 2 (the
    // entry acknowledged), read as new entries (not taken over) on their second delivery.
    expect(first.map((d) => [d.deliveries, d.reclaimed])).toEqual([[2, false], [2, false], [2, false], [2, false]]);
    expect((await next.pull(10, false)).map((d) => d.deliveries)).toEqual([2, 2, 2, 2]);
    expect((await next.pull(10, false)).map((d) => d.deliveries)).toEqual([2, 2]);
  });
});
