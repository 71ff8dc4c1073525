/**
 * Stats (lib/core/counters.ts and lib/stats/statsSnapshot.ts): takeSnapshot turns the engine's
 * live counters into a frozen snapshot, reuses the previous one when nothing changed and
 * shares its unchanged parts when something did. Through a Batcher, every way a request can
 * end keeps the invariant
 * `submitted = queued + inFlight + succeeded + failed + cancelled + timedOut + rejected`.
 */
import { Batcher, type BatcherStats } from '../../lib';
import { Batch } from '../../lib/core/batch';
import { Counters } from '../../lib/core/counters';
import { BATCH_FAILED, CANCELLED, FAILED, REJECTED, SUCCEEDED, TIMED_OUT } from '../../lib/core/request';
import { takeSnapshot } from '../../lib/stats/statsSnapshot';
import { ManualScheduler } from '../helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from '../helpers/recording';

const SETTINGS = Object.freeze({ maxBatchSize: 8, maxDelayMs: 0, maxConcurrentBatches: 1, maxQueueSize: Infinity, maxBatchWeight: Infinity, agingMs: 1000 });

function addsUp(s: BatcherStats): boolean {
  return s.submitted === s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected;
}

describe('takeSnapshot', () => {
  it('starts all zero, and is frozen through and through', () => {
    const s = takeSnapshot(undefined, 'ranker', new Counters(), false, SETTINGS);
    expect(s).toEqual({
      name: 'ranker', queued: 0, inFlight: 0, batchesInFlight: 0, submitted: 0, succeeded: 0, failed: 0,
      cancelled: 0, timedOut: 0, rejected: 0, batches: 0, failedBatches: 0, abandonedBatches: 0, bisections: 0, bisectionCalls: 0, merged: 0,
      meanBatchSize: 0, batchSizes: {}, dispatchReasons: { full: 0, delay: 0, flush: 0, drain: 0, target: 0 },
      lastBatch: undefined, settings: SETTINGS, stopped: false,
    });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.batchSizes)).toBe(true);
    expect(Object.isFrozen(s.dispatchReasons)).toBe(true);
    expect(() => ((s as { queued: number }).queued = 1)).toThrow(TypeError);
  });

  it('returns the previous snapshot itself while nothing changed, and a new one when anything did', () => {
    const counters = new Counters();
    const first = takeSnapshot(undefined, 'b', counters, false, SETTINGS);
    expect(takeSnapshot(first, 'b', counters, false, SETTINGS)).toBe(first);
    counters.submitted++;
    counters.queued++;
    const second = takeSnapshot(first, 'b', counters, false, SETTINGS);
    expect(second).not.toBe(first);
    expect(second).toMatchObject({ submitted: 1, queued: 1 });
    expect(first).toMatchObject({ submitted: 0, queued: 0 }); // history is not rewritten
    expect(takeSnapshot(second, 'b', counters, false, SETTINGS)).toBe(second);
    expect(takeSnapshot(second, 'b', counters, true, SETTINGS)).toMatchObject({ stopped: true });
    expect(takeSnapshot(second, 'renamed', counters, false, SETTINGS).name).toBe('renamed');
  });

  it('shares unchanged parts with the previous snapshot, and rebuilds only what changed', () => {
    const counters = new Counters();
    counters.batches = 2;
    counters.batchSizes[2] = 1;
    counters.batchSizes[4] = 1;
    counters.dispatchReasons.full = 2;
    const a = takeSnapshot(undefined, 'b', counters, false, SETTINGS);
    expect(a).toMatchObject({ batchSizes: { 2: 1, 4: 1 }, meanBatchSize: 3, dispatchReasons: { full: 2 } });
    counters.succeeded++;
    const b = takeSnapshot(a, 'b', counters, false, SETTINGS);
    expect(b).not.toBe(a);
    expect(b.batchSizes).toBe(a.batchSizes);
    expect(b.dispatchReasons).toBe(a.dispatchReasons);
    counters.batches++;
    counters.batchSizes[4]++;
    const c = takeSnapshot(b, 'b', counters, false, SETTINGS);
    expect(c.batchSizes).not.toBe(b.batchSizes);
    expect(c.batchSizes).toEqual({ 2: 1, 4: 2 });
    expect(c.meanBatchSize).toBeCloseTo(10 / 3);
    expect(c.dispatchReasons).toBe(b.dispatchReasons);
    expect(Object.isFrozen(c.batchSizes)).toBe(true);
  });

  it('builds the last batch\'s report only when read, and once: the snapshot stays reusable', () => {
    const counters = new Counters();
    const batch = new Batch<number, number>(7, [], 'flush', 'p', 0);
    batch.startedAt = 4;
    batch.finishedAt = 9;
    const build = jest.spyOn(batch, 'report');
    counters.lastBatch = batch;
    expect(build).not.toHaveBeenCalled(); // finishing a batch costs no report
    const s = takeSnapshot(undefined, 'b', counters, false, SETTINGS);
    expect(s.lastBatch).toEqual({ batchId: 7, size: 0, reason: 'flush', partition: 'p', outcome: 'succeeded', durationMs: 5, queueWaitMs: [], weight: 0, contexts: [] });
    expect(Object.isFrozen(s.lastBatch)).toBe(true);
    expect(takeSnapshot(s, 'b', counters, false, SETTINGS)).toBe(s); // the same report object: nothing changed
    expect(build).toHaveBeenCalledTimes(2);
    expect(build.mock.results[1].value).toBe(build.mock.results[0].value); // built once, then kept
    counters.lastBatch = new Batch<number, number>(8, [], 'full', undefined, 0);
    expect(takeSnapshot(s, 'b', counters, false, SETTINGS).lastBatch?.batchId).toBe(8);
  });

  it('Counters.count files every settled state under its outcome (a batch failure is a failure)', () => {
    const counters = new Counters();
    for (const state of [SUCCEEDED, FAILED, BATCH_FAILED, CANCELLED, TIMED_OUT, REJECTED, REJECTED] as const) counters.count(state);
    expect(counters).toMatchObject({ succeeded: 1, failed: 2, cancelled: 1, timedOut: 1, rejected: 2 });
  });
});

describe('stats through a Batcher: every request is in exactly one place', () => {
  it('adds up after every kind of step: queued, running, each way of ending, refusals, stop', async () => {
    const scheduler = new ManualScheduler();
    const held: Deferred<unknown[]>[] = [];
    const batcher = new Batcher<number, number>({
      maxBatchSize: 2, maxDelayMs: 5, maxQueueSize: 3, timeoutMs: 100, scheduler,
      runBatch: () => {
        const d = deferred<unknown[]>();
        held.push(d);
        return d.promise as never;
      },
    });
    const seen: BatcherStats[] = [];
    batcher.stats$.subscribe((s) => seen.push(s));
    const step = async (): Promise<BatcherStats> => {
      await settleMicrotasks();
      const s = batcher.stats();
      expect(addsUp(s)).toBe(true);
      return s;
    };
    const controller = new AbortController();
    const calls = [
      outcome(batcher.run(1)), outcome(batcher.run(2)), // a full batch: running
      outcome(batcher.run(3, { signal: controller.signal })), outcome(batcher.run(4)), outcome(batcher.run(5, { timeoutMs: 10 })),
    ];
    expect(await step()).toMatchObject({ submitted: 5, queued: 3, inFlight: 2, batchesInFlight: 1 });
    const full = outcome(batcher.run(6)); // 3 queued: refused
    expect(await step()).toMatchObject({ rejected: 1, queued: 3 });
    expect(full.error).toMatchObject({ name: 'QueueFullError' });
    controller.abort(new Error('gone'));
    expect(await step()).toMatchObject({ cancelled: 1, queued: 2 });
    scheduler.advance(10);
    expect(await step()).toMatchObject({ timedOut: 1, queued: 1 });
    held[0].resolve([10, new Error('slot 2')]);
    expect(await step()).toMatchObject({ succeeded: 1, failed: 1, inFlight: 1, queued: 0, batchesInFlight: 1 }); // 4 went out on the freed slot
    held[1].reject(new Error('model down'));
    expect(await step()).toMatchObject({ failed: 2, failedBatches: 1, inFlight: 0 });
    const refused = outcome(batcher.run(7, { timeoutMs: -1 }));
    const queued = outcome(batcher.run(8));
    expect(await step()).toMatchObject({ rejected: 2, queued: 1 });
    await batcher.stop();
    const end = await step();
    expect(end).toMatchObject({ submitted: 8, queued: 0, inFlight: 0, succeeded: 1, failed: 2, cancelled: 1, timedOut: 1, rejected: 3, stopped: true });
    expect([refused.error, queued.error].map((e) => (e as Error).name)).toEqual(['RangeError', 'BatcherStoppedError']);
    expect(calls.every((c) => c.settled)).toBe(true);
    expect(seen.length).toBeGreaterThan(5);
    for (const s of seen) {
      expect(addsUp(s)).toBe(true);
      expect(Object.isFrozen(s)).toBe(true);
    }
  });
});
