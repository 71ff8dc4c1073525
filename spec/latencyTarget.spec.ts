/**
 * `latencyTarget: { p99Ms }` through the faces, on virtual time: a simulated model whose batch
 * time the test chooses (an Observable on the test's clock, so durations are exact), open-loop
 * arrivals, and every request's latency (run() → its settlement) read from `results$`.
 */
import { from, lastValueFrom, map, timer, toArray } from 'rxjs';
import { Batcher, batchMap, type BatchContext, type BatcherStats } from '../lib';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';
import { ManualScheduler } from './helpers/manualScheduler';

interface Run {
  /** Every request's latency, in ms of the virtual clock. */
  latencies: number[];
  /** Each batch: when it started, its size and why it was cut. */
  batches: { at: number; size: number; reason: BatchContext['reason'] }[];
  /** The stats' `latencyTarget.waitMs`, sampled every ms. */
  waits: number[];
  stats: BatcherStats;
}

/**
 * Runs `ms` of arrivals (`perMs` requests each ms, `perMs` may be fractional) through a Batcher
 * on a manual clock; `batchMs(size, now)` is the model. Then lets everything finish.
 */
function simulate(options: {
  batcher: { latencyTarget?: { p99Ms: number }; maxDelayMs?: number; maxBatchSize?: number };
  perMs: number;
  ms: number;
  batchMs: (size: number, now: number) => number;
}): Run {
  const scheduler = new ManualScheduler();
  const run: Run = { latencies: [], batches: [], waits: [], stats: undefined as never };
  const batcher = new Batcher<number, number>({
    maxBatchSize: 64,
    scheduler,
    ...options.batcher,
    runBatch: (xs, ctx) => {
      run.batches.push({ at: scheduler.now(), size: xs.length, reason: ctx.reason });
      return timer(options.batchMs(xs.length, scheduler.now()), scheduler).pipe(map(() => xs.map((x) => x * 2)));
    },
  });
  const issuedAt: number[] = [];
  batcher.results$.subscribe((s) => (run.latencies[s.id - 1] = scheduler.now() - issuedAt[s.id - 1]));
  let n = 0;
  for (let t = 0; t < options.ms; t++) {
    const arrivals = Math.floor((t + 1) * options.perMs) - Math.floor(t * options.perMs);
    for (let i = 0; i < arrivals; i++) {
      issuedAt[n] = t;
      void batcher.run(n++);
    }
    scheduler.advance(1);
    run.waits.push(batcher.stats().latencyTarget?.waitMs ?? Number.NaN);
  }
  scheduler.advance(10_000);
  run.stats = batcher.stats();
  return run;
}

function p99(latencies: readonly number[]): number {
  const sorted = [...latencies].sort((a, b) => a - b);
  return sorted[Math.ceil(0.99 * sorted.length) - 1];
}

const meanSize = (batches: Run['batches']): number => batches.reduce((n, b) => n + b.size, 0) / batches.length;

describe('latencyTarget: the engine chooses each window from the objective', () => {
  it('cuts the first batch at once to measure, then waits as long as the target allows; ctx.reason and stats say "target"', () => {
    const run = simulate({ batcher: { latencyTarget: { p99Ms: 20 } }, perMs: 0.5, ms: 400, batchMs: () => 4 });
    expect(run.batches[0]).toEqual({ at: 1, size: 1, reason: 'target' }); // the window of 0 ms closes on the next tick
    expect(run.batches.every((b) => b.reason === 'target')).toBe(true);
    expect(run.stats.dispatchReasons).toEqual({ full: 0, delay: 0, flush: 0, drain: 0, target: run.batches.length });
    // It learned the model (4 ms whatever the size) and waits about 20 − 1 − 4 = 15 ms from a window's first request.
    expect(run.stats.latencyTarget).toMatchObject({ p99Ms: 20, fixedMs: 4, perItemMs: 0, samples: run.batches.length, overTarget: 0 });
    expect(run.stats.latencyTarget!.waitMs).toBeGreaterThanOrEqual(13);
    expect(meanSize(run.batches.slice(5))).toBeGreaterThan(6); // 0.5/ms over ~15 ms
    expect(Math.max(...run.latencies)).toBeLessThanOrEqual(20);
    expect(run.stats.settings.latencyTarget).toEqual({ p99Ms: 20 });
    expect(run.stats.settings.maxDelayMs).toBe(20); // no maxDelayMs given: the target is the cap
  });

  it('waits less when the model is slow and grows batches when it is fast, keeping the p99 under the target', () => {
    const fast = simulate({ batcher: { latencyTarget: { p99Ms: 20 } }, perMs: 2, ms: 1000, batchMs: (n) => 2 + Math.floor(n / 20) });
    const slow = simulate({ batcher: { latencyTarget: { p99Ms: 20 } }, perMs: 2, ms: 1000, batchMs: (n) => 8 + Math.floor(n / 20) });
    expect(p99(fast.latencies)).toBeLessThanOrEqual(20);
    expect(p99(slow.latencies)).toBeLessThanOrEqual(20);
    expect(meanSize(fast.batches)).toBeGreaterThan(meanSize(slow.batches) * 1.5);
    expect(fast.stats.latencyTarget!.waitMs).toBeGreaterThan(slow.stats.latencyTarget!.waitMs + 4);
    expect(fast.stats.latencyTarget!.fixedMs).toBeLessThan(slow.stats.latencyTarget!.fixedMs - 4);
  });

  it.each([0.78, 3.9])('at %d requests/ms, batches within 10%% of the largest any fixed maxDelayMs makes under the same p99, untuned', (perMs) => {
    const model = (n: number): number => 5 + Math.floor(n / 20); // 5 ms + 0.05 ms per item, in whole ms
    const target = simulate({ batcher: { latencyTarget: { p99Ms: 20 } }, perMs, ms: 1200, batchMs: model });
    expect(p99(target.latencies)).toBeLessThanOrEqual(20);
    const meeting = [0, 2, 5, 10, 15, 20]
      .map((maxDelayMs) => simulate({ batcher: { maxDelayMs }, perMs, ms: 1200, batchMs: model }))
      .filter((fixed) => p99(fixed.latencies) <= 20);
    const best = Math.max(...meeting.map((fixed) => meanSize(fixed.batches)));
    expect(meanSize(target.batches)).toBeGreaterThan(0.9 * best);
    expect(meanSize(target.batches)).toBeGreaterThan(1.5 * meanSize(meeting[0].batches)); // and well above no wait at all
  });

  it('keeps maxDelayMs the hard cap: with a roomy target, windows close at maxDelayMs (reason "delay")', () => {
    const run = simulate({ batcher: { latencyTarget: { p99Ms: 1000 }, maxDelayMs: 5 }, perMs: 0.2, ms: 300, batchMs: () => 2 });
    expect(run.batches[0].reason).toBe('target'); // nothing learned yet: cut at once, to measure
    expect(new Set(run.batches.slice(1).map((b) => b.reason))).toEqual(new Set(['delay']));
    expect(Math.max(...run.latencies)).toBeLessThanOrEqual(5 + 2);
    expect(run.stats.latencyTarget!.waitMs).toBe(5);
  });

  it('waits less once the model slows down mid-run, and keeps the p99 under the target in both halves', () => {
    const run = simulate({ batcher: { latencyTarget: { p99Ms: 30 } }, perMs: 0.78, ms: 2000, batchMs: (n, now) => (now < 1000 ? 5 + Math.floor(n / 20) : 10 + Math.floor(n / 10)) });
    const firstHalf = run.latencies.slice(0, 780);
    const secondHalf = run.latencies.slice(780);
    expect(p99(firstHalf)).toBeLessThanOrEqual(30);
    expect(p99(secondHalf)).toBeLessThanOrEqual(30);
    const waitBefore = run.waits[999];
    const waitAfter = run.waits[1999];
    expect(waitAfter).toBeLessThan(waitBefore - 3);
    expect(run.stats.latencyTarget!.fixedMs).toBeGreaterThan(9);
  });

  it('under overload, late sealing fills every batch; the target never cuts them small', () => {
    const run = simulate({ batcher: { latencyTarget: { p99Ms: 20 } }, perMs: 12, ms: 500, batchMs: (n) => 5 + Math.floor(n / 20) });
    expect(meanSize(run.batches.slice(2))).toBeGreaterThan(63);
    expect(run.stats.dispatchReasons.full).toBeGreaterThan(0.9 * run.batches.length);
  });

  it('configure(): turns the target on, changes it, and off again (windows back to maxDelayMs)', () => {
    const scheduler = new ManualScheduler();
    const reasons: string[] = [];
    const batcher = new Batcher<number, number>({
      maxBatchSize: 8, maxDelayMs: 40, scheduler,
      runBatch: (xs, ctx) => (reasons.push(ctx.reason), xs.map((x) => x + 1)),
    });
    batcher.configure({ latencyTarget: { p99Ms: 10 } });
    expect(batcher.stats().settings).toEqual({ maxBatchSize: 8, maxDelayMs: 40, maxConcurrentBatches: 1, maxQueueSize: Infinity, maxBatchWeight: Infinity, agingMs: 1000, latencyTarget: { p99Ms: 10 } });
    void batcher.run(1);
    scheduler.advance(1);
    expect(reasons).toEqual(['target']); // cut at once: nothing learned yet
    void batcher.run(2);
    scheduler.advance(9); // a 0 ms model: 10 − 1 (margin) = 9 ms
    expect(reasons).toEqual(['target', 'target']);
    batcher.configure({ latencyTarget: { p99Ms: 30 } });
    expect(batcher.stats().latencyTarget).toMatchObject({ p99Ms: 30, samples: 2 }); // what it learned is kept
    batcher.configure({ latencyTarget: undefined });
    expect(batcher.stats().latencyTarget).toBeUndefined();
    expect(batcher.stats().settings).not.toHaveProperty('latencyTarget');
    void batcher.run(3);
    scheduler.advance(39);
    expect(reasons).toHaveLength(2);
    scheduler.advance(1);
    expect(reasons).toEqual(['target', 'target', 'delay']);
  });

  it('a changed target re-plans an open window from its oldest request', () => {
    const scheduler = new ManualScheduler();
    const at: number[] = [];
    const batcher = new Batcher<number, number>({
      maxBatchSize: 8, scheduler, latencyTarget: { p99Ms: 100 },
      runBatch: (xs) => (at.push(scheduler.now()), [...xs]),
    });
    void batcher.run(1); // at 0: the first batch, cut at once to measure (the model takes 0 ms)
    scheduler.advance(1);
    void batcher.run(2); // at 1: a window of 100 − 1 (margin) = 99 ms
    scheduler.advance(10);
    batcher.configure({ latencyTarget: { p99Ms: 20 } }); // at 11; maxDelayMs follows the target: 20
    scheduler.advance(8);
    expect(at).toEqual([0]);
    scheduler.advance(1); // at 20: 19 ms after the request, 20 − 1 (margin)
    expect(at).toEqual([0, 20]);
  });

  it('batchMap and a remote worker take it too', async () => {
    const reasons: string[] = [];
    const out = await lastValueFrom(
      from([1, 2, 3]).pipe(batchMap((xs, ctx) => (reasons.push(ctx.reason), xs.map((x) => x * 10)), { maxBatchSize: 8, latencyTarget: { p99Ms: 50 } }), toArray()),
    );
    expect(out).toEqual([10, 20, 30]);
    expect(reasons).toEqual(['drain']); // the source completed before the window closed

    const t = memoryTransport();
    const worker = await serveBatches<number, number>(t, 'lt', (xs, ctx) => (reasons.push(ctx.reason), xs.map((x) => x + 1)), {
      // A window far longer than the test: only the target can cut the first batch at once (with
      // the default cap a late timer on a loaded machine made it a 'delay').
      maxBatchSize: 8, maxDelayMs: 60_000, latencyTarget: { p99Ms: 50 },
    });
    const producer = remoteBatcher<number, number>(t, 'lt');
    await expect(producer.run(1)).resolves.toBe(2);
    expect(reasons[1]).toBe('target'); // the worker's first batch: cut at once, to measure
    expect(worker.stats().latencyTarget).toMatchObject({ p99Ms: 50, samples: 1 });
    await producer.stop();
    await worker.stop();
  });
});

describe('latencyTarget: descriptive errors for API abuse', () => {
  const runBatch = (xs: readonly number[]): number[] => [...xs];
  const make = (latencyTarget: unknown) => () => new Batcher({ name: 'lt', runBatch, maxBatchSize: 4, latencyTarget } as never);

  it('must be an object like { p99Ms: 20 }', () => {
    expect(make(20)).toThrow(TypeError);
    expect(make(20)).toThrow('[rx-batcher] "lt": `latencyTarget` must be an object like { p99Ms: 20 } (the latency 99% of requests should stay under, in ms), got 20 (number).');
    expect(make(null)).toThrow('[rx-batcher] "lt": `latencyTarget` must be an object like { p99Ms: 20 } (the latency 99% of requests should stay under, in ms), got null.');
    expect(make([20])).toThrow('got an array of length 1 (object).');
  });

  it('needs p99Ms, and names a misspelt key', () => {
    expect(make({})).toThrow('[rx-batcher] "lt": `latencyTarget` needs `p99Ms`: the latency (queue wait + batch time) 99% of requests should stay under, in ms, e.g. { p99Ms: 20 }.');
    expect(make({ p99: 20 })).toThrow(TypeError);
    expect(make({ p99: 20 })).toThrow('[rx-batcher] "lt": `latencyTarget` has no key `p99`; did you mean `p99Ms`? It takes { p99Ms: 20 }.');
    expect(make({ p99Ms: 20, p50Ms: 5 })).toThrow('[rx-batcher] "lt": `latencyTarget` has no key `p50Ms`; did you mean `p99Ms`? It takes { p99Ms: 20 }.');
  });

  it.each([
    ['"20"', '20', TypeError, '"20" (string)'],
    ['0', 0, RangeError, '0 (number)'],
    ['-5', -5, RangeError, '-5 (number)'],
    ['NaN', NaN, RangeError, 'NaN (number)'],
    ['Infinity', Infinity, RangeError, 'Infinity (number)'],
  ])('p99Ms %s is refused: a finite number of milliseconds > 0', (_what, value, kind, shown) => {
    expect(make({ p99Ms: value })).toThrow(kind);
    expect(make({ p99Ms: value })).toThrow(`[rx-batcher] "lt": \`latencyTarget.p99Ms\` must be a finite number of milliseconds > 0, got ${shown}.`);
  });

  it('allows the edges: a fraction of a millisecond, and maxDelayMs 0 as the cap', () => {
    expect(make({ p99Ms: 0.5 })).not.toThrow();
    expect(() => new Batcher({ runBatch, maxBatchSize: 4, maxDelayMs: 0, latencyTarget: { p99Ms: 20 } })).not.toThrow();
  });

  it('suggests latencyTarget for the names people try', () => {
    expect(() => new Batcher({ runBatch, maxBatchSize: 4, p99Ms: 20 } as never)).toThrow('[rx-batcher] "batcher": unknown option `p99Ms`; did you mean `latencyTarget`?');
    expect(() => new Batcher({ runBatch, maxBatchSize: 4, targetLatency: { p99Ms: 20 } } as never)).toThrow('did you mean `latencyTarget`?');
    expect(() => new Batcher({ runBatch, maxBatchSize: 4, latencyTraget: { p99Ms: 20 } } as never)).toThrow('did you mean `latencyTarget`?');
  });

  it('configure() checks it like the constructor and changes nothing on a bad value', () => {
    const batcher = new Batcher({ name: 'lt', runBatch, maxBatchSize: 4, latencyTarget: { p99Ms: 20 } });
    expect(() => batcher.configure({ latencyTarget: { p99Ms: -1 } })).toThrow('[rx-batcher] "lt": `latencyTarget.p99Ms` must be a finite number of milliseconds > 0, got -1 (number).');
    expect(batcher.stats().settings.latencyTarget).toEqual({ p99Ms: 20 });
  });

  it('batchMap and serveBatches say the same; a producer has no windows of its own', async () => {
    expect(() => batchMap(runBatch, { maxBatchSize: 4, latencyTarget: { p99Ms: 'fast' } } as never)).toThrow(
      '[rx-batcher] "batchMap": `latencyTarget.p99Ms` must be a finite number of milliseconds > 0, got "fast" (string).',
    );
    const t = memoryTransport();
    await expect(serveBatches(t, 's', runBatch, { name: 'w', maxBatchSize: 4, latencyTarget: 5 } as never)).rejects.toThrow(
      '[rx-batcher] "w": `latencyTarget` must be an object like { p99Ms: 20 } (the latency 99% of requests should stay under, in ms), got 5 (number).',
    );
    expect(() => remoteBatcher(t, 's', { latencyTarget: { p99Ms: 20 } } as never)).toThrow('unknown option `latencyTarget`');
  });

  it('the caller\'s object is copied: changing it later changes nothing', () => {
    const target = { p99Ms: 20 };
    const batcher = new Batcher({ runBatch, maxBatchSize: 4, latencyTarget: target });
    target.p99Ms = 1;
    expect(batcher.stats().settings.latencyTarget).toEqual({ p99Ms: 20 });
    expect(Object.isFrozen(batcher.stats().settings.latencyTarget)).toBe(true);
  });
});
