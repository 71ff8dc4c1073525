/**
 * The latency-target controller (lib/core/latencyTarget.ts) on its own: what it learns of the
 * model's batch time from finished batches, and the wait it chooses for a window, against a
 * hand-made view of the engine (its clock, running batches, submitted count and rules).
 */
import { TargetController, type FinishedSample } from '../../lib/core/latencyTarget';

type Running = { startedAt: number; requests: { enqueuedAt: number }[] };

/** A controller over a fake engine whose clock, arrivals and rules the test sets. */
function controller(rules: { p99Ms?: number; maxBatchSize?: number; maxConcurrentBatches?: number } = {}) {
  const state = { now: 0, submitted: 0, p99Ms: rules.p99Ms ?? 20 as number | undefined };
  const running = new Set<Running>();
  const c = new TargetController({
    clock: () => state.now,
    running,
    counters: { get submitted() { return state.submitted; } },
    rules: () => ({
      latencyTarget: state.p99Ms === undefined ? undefined : { p99Ms: state.p99Ms },
      maxBatchSize: rules.maxBatchSize ?? 64,
      maxConcurrentBatches: rules.maxConcurrentBatches ?? 1,
    }),
  });
  /** A finished batch of `size` requests that took `ms`, all enqueued `waited` ms before it started. */
  const batch = (size: number, ms: number, options: { waited?: number; reason?: string } = {}): FinishedSample => {
    const startedAt = state.now;
    state.now += ms;
    return {
      reason: options.reason ?? 'full',
      startedAt,
      finishedAt: state.now,
      requests: Array.from({ length: size }, () => ({ enqueuedAt: startedAt - (options.waited ?? 0) })),
    };
  };
  /** Teaches it `t(n) = a + b·n` from batches of sizes cycling through `sizes`, `rounds` times. */
  const teach = (a: number, b: number, rounds = 60, sizes = [2, 10, 20, 40]): void => {
    for (let i = 0; i < rounds; i++) for (const n of sizes) c.finished(batch(n, a + b * n));
  };
  return { c, state, running, batch, teach };
}

describe('TargetController: learning the batch time', () => {
  it('knows nothing at first: the first window closes at once, to measure', () => {
    const { c } = controller();
    expect(c.windowLeft(0, 1, 20, false)).toBe(0);
    expect(c.snapshot()).toMatchObject({ p99Ms: 20, samples: 0, fixedMs: 0, perItemMs: 0, waitMs: 0 });
  });

  it('fits t(n) = a + b·n from batches of different sizes', () => {
    const { c, teach } = controller();
    teach(3, 0.5);
    expect(c.fixedMs).toBeCloseTo(3, 1);
    expect(c.perItemMs).toBeCloseTo(0.5, 2);
    expect(c.predict(64)).toBeCloseTo(35, 0);
    expect(c.snapshot()).toMatchObject({ samples: 240, fixedMs: expect.closeTo(3, 1), perItemMs: expect.closeTo(0.5, 2) });
  });

  it('from batches of one size, predicts that time for every size; a larger batch then teaches the slope', () => {
    const { c, batch } = controller();
    for (let i = 0; i < 20; i++) c.finished(batch(4, 6));
    expect([c.fixedMs, c.perItemMs]).toEqual([6, 0]);
    for (let i = 0; i < 20; i++) {
      c.finished(batch(4, 6));
      c.finished(batch(44, 26));
    }
    expect(c.perItemMs).toBeCloseTo(0.5, 1);
    expect(c.predict(24)).toBeCloseTo(16, 0);
  });

  it('follows a model that slows down: two batches in a row far off the line make it forget the old one', () => {
    const { c, teach } = controller({ p99Ms: 200 });
    teach(4, 0.25);
    expect(c.predict(20)).toBeCloseTo(9, 0);
    teach(8, 0.5, 2); // another tenant on the accelerator: every batch takes twice as long
    expect(c.predict(20)).toBeGreaterThan(16);
    expect(c.predict(20)).toBeLessThan(20);
  });

  it('takes a stall of the machine as a quarter of the target: the line and the margin barely move', () => {
    const { c, teach, batch } = controller({ p99Ms: 20 });
    teach(4, 0.25);
    const [before, margin] = [c.predict(20), c.marginMs];
    c.finished(batch(20, 500));
    expect(c.predict(20) - before).toBeLessThanOrEqual(5);
    expect(c.marginMs - margin).toBeLessThan(5);
    teach(4, 0.25, 10);
    expect(c.predict(20)).toBeCloseTo(before, 0);
  });

  it('counts requests whose queue wait + batch time came out over the target', () => {
    const { c, batch } = controller({ p99Ms: 20 });
    c.finished(batch(3, 10, { waited: 5 })); // 15 ms: in time
    c.finished(batch(2, 10, { waited: 11 })); // 21 ms: over
    expect(c.snapshot()!.overTarget).toBe(2);
  });
});

describe('TargetController: choosing the wait', () => {
  it('waits the latest x that finishes the oldest request in time: w + x + t(k) ≤ p99Ms − margin, in whole ms', () => {
    const { c, teach } = controller({ p99Ms: 20.5 });
    teach(2, 0.5);
    expect(c.marginMs).toBeCloseTo(1, 3); // a model that never varies: only the clock's 1 ms
    // Oldest waited 3 ms, 4 requests, no arrivals seen: 20.5 − 1 − 3 − (2 + 0.5·4) = 12.5.
    expect(c.windowLeft(3, 4, 17.5, false)).toBe(12);
    expect(c.snapshot()!.waitMs).toBe(15);
    // The same queue 12 ms later: half a millisecond is left, less than a tick: due now.
    expect(c.windowLeft(15, 4, 5.5, false)).toBe(0);
  });

  it('expects the batch to grow with the arrivals it has seen, and so waits less', () => {
    const { c, state, teach } = controller({ p99Ms: 20.5 });
    teach(2, 0.5);
    const quiet = c.windowLeft(0, 2, 20, false); // 20.5 − 1 − (2 + 0.5·2) = 16.5
    for (let i = 0; i < 50; i++) {
      state.now += 10;
      state.submitted += 20; // 2 per ms
      c.windowLeft(0, 2, 20, false);
    }
    expect(c.snapshot()!.arrivalsPerSec).toBeCloseTo(2000, -2);
    // x + 2 + 0.5·(2 + 2x) ≤ 19.5  →  x ≤ 8.25
    expect([quiet, c.windowLeft(0, 2, 20, false)]).toEqual([16, 8]);
  });

  it('never waits beyond maxDelayMs: the cap wins when the target would allow more', () => {
    const { c, teach } = controller({ p99Ms: 1000 });
    teach(2, 0.5);
    expect(c.windowLeft(2, 1, 3, false)).toBe(3);
  });

  it('counts in the wait for a busy slot: due now when even the first free slot is too late', () => {
    const { c, state, running, teach } = controller({ p99Ms: 20.5 });
    teach(2, 0.5);
    running.add({ startedAt: state.now, requests: Array.from({ length: 30 }, () => ({ enqueuedAt: state.now })) }); // ends in 17 ms
    expect(c.windowLeft(0, 4, 20, false)).toBe(0); // the slot frees at 17, later than 15.5: due now, goes when it frees
    running.clear();
    running.add({ startedAt: state.now, requests: Array.from({ length: 6 }, () => ({ enqueuedAt: state.now })) }); // ends in 5 ms
    expect(c.windowLeft(0, 4, 20, false)).toBe(15);
    expect(controller({ maxConcurrentBatches: 2 }).c.windowLeft(0, 1, 20, false)).toBe(0); // (nothing learned yet)
  });

  it('keeps more in reserve when its windows close late, and when its own batches come out late', () => {
    const { c, teach, batch } = controller({ p99Ms: 20 });
    teach(2, 0.5);
    const margin = c.marginMs;
    c.windowLeft(25, 4, 20, true); // the timer fired long after the window should have closed
    expect(c.marginMs).toBeGreaterThan(margin);
    const late = controller({ p99Ms: 20 });
    late.teach(2, 0.5);
    const before = late.c.marginMs;
    late.c.finished(late.batch(10, 7, { waited: 14, reason: 'target' })); // 21 ms: all ten late, one batch: at most 1 ms more
    expect(late.c.marginMs - before).toBeCloseTo(1, 5);
    late.c.finished(late.batch(10, 7, { waited: 5, reason: 'full' })); // not its decision: no correction
    expect(late.c.marginMs - before).toBeCloseTo(1, 5);
    for (let i = 0; i < 200; i++) late.c.finished(late.batch(10, 7, { waited: 2, reason: 'target' })); // 2000 in time
    expect(late.c.marginMs - before).toBeCloseTo(0, 2);
  });

  it('shows nothing while no target is in force, and a frozen snapshot, rebuilt only after a change', () => {
    const { c, state, teach } = controller({ p99Ms: 20 });
    teach(2, 0.5);
    const first = c.snapshot()!;
    expect(Object.isFrozen(first)).toBe(true);
    expect(c.snapshot()).toBe(first);
    c.windowLeft(0, 1, 20, false);
    expect(c.snapshot()).not.toBe(first);
    state.p99Ms = undefined;
    expect(c.snapshot()).toBeUndefined();
    expect(c.windowLeft(0, 1, 7, false)).toBe(7); // off: the window is maxDelayMs's
  });
});
