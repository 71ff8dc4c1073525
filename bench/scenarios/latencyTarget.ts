import { Batcher } from '../../lib';
import { SerialTimerModel } from '../harness/models';
import { openLoop, poissonArrivals } from '../harness/openLoop';
import { now, sleep } from '../harness/process';
import { percentile } from '../harness/statistics';
import type { Metrics } from '../harness/tasks';

/**
 * Options of {@link measureLatencyTarget}: one batcher setting against one load.
 *
 * @example
 * ```ts
 * const options: LatencyTargetOptions = { setting: { latencyTarget: 20 }, p99Ms: 20, ratePerSec: 3900, warmupMs: 200, durationMs: 1200, slowdown: false, overheadMs: 5, perItemMs: 0.05, seed: 7 };
 * ```
 */
export interface LatencyTargetOptions {
  /** The batcher under test: a fixed `maxDelayMs`, or `latencyTarget: { p99Ms }` alone. */
  readonly setting: { readonly maxDelayMs: number } | { readonly latencyTarget: number };
  /** The objective goodput is counted against (requests answered within it). */
  readonly p99Ms: number;
  readonly ratePerSec: number;
  /** Arrivals before the measured window, not counted: JIT, first batches, what the controller learns first. */
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The model's batch time doubles halfway through the measured window; each half is reported. */
  readonly slowdown: boolean;
  readonly overheadMs: number;
  readonly perItemMs: number;
  readonly seed: number;
}

/**
 * Scenario 7: open-loop Poisson arrivals through one rx-batcher (`maxBatchSize` 64, one slot)
 * on the serial timer model, with either a fixed `maxDelayMs` or `latencyTarget`. Reports, for
 * the requests issued in the measured window: p99 latency (call → answer), goodput (requests
 * answered within `p99Ms`, per second of the window) and mean batch size; with `slowdown`,
 * the same for each half. Requests still unanswered `3 × p99Ms` after the last arrival count
 * as over the target (their latency is reported as the time they had waited then: a lower
 * bound, `unanswered` says how many); the model then answers the rest at once so nothing runs on.
 *
 * @example
 * ```ts
 * const m = await measureLatencyTarget({ setting: { maxDelayMs: 2 }, p99Ms: 20, ratePerSec: 780, warmupMs: 200, durationMs: 1200, slowdown: false, overheadMs: 5, perItemMs: 0.05, seed: 7 });
 * ```
 */
export async function measureLatencyTarget(options: LatencyTargetOptions): Promise<Metrics> {
  const { setting, p99Ms, warmupMs, durationMs } = options;
  const model = new SerialTimerModel(options.overheadMs, options.perItemMs);
  const batchSizes: number[] = [];
  const batchAt: number[] = [];
  const batcher = new Batcher<number, number>({
    name: 'bench',
    maxBatchSize: 64,
    ...('latencyTarget' in setting ? { latencyTarget: { p99Ms: setting.latencyTarget } } : { maxDelayMs: setting.maxDelayMs }),
    runBatch: (inputs) => {
      batchSizes.push(inputs.length);
      batchAt.push(now());
      return model.runBatch(inputs);
    },
  });
  const arrivals = poissonArrivals(options.ratePerSec, warmupMs + durationMs, options.seed);
  const issuedAt = new Float64Array(arrivals.length);
  const latencies = new Float64Array(arrivals.length).fill(Number.NaN);
  let closed = false;
  let start = 0;
  let slowed: ReturnType<typeof setTimeout> | undefined;
  await openLoop(arrivals, (i, t0) => {
    if (i === 0) {
      start = t0;
      if (options.slowdown) slowed = setTimeout(() => (model.timeFactor = 2), warmupMs + durationMs / 2);
    }
    issuedAt[i] = now();
    batcher.run(i).then(
      () => {
        if (!closed) latencies[i] = now() - issuedAt[i];
      },
      () => {},
    );
  });
  const cutoff = start + warmupMs + durationMs + 3 * p99Ms;
  while (now() < cutoff && latencies.some((x, i) => Number.isNaN(x) && issuedAt[i] - start >= warmupMs)) await sleep(Math.min(20, Math.max(1, cutoff - now())));
  closed = true;
  const endedAt = now();
  clearTimeout(slowed);
  const stats = batcher.stats();
  model.stop();
  await batcher.stop();

  // Only requests due in the measured window count (by their scheduled arrival, so a load
  // generator running late on a busy machine moves no request out of it); split it in halves
  // for the slowdown. Latency still counts from when each request was actually issued.
  const windowStart = start + warmupMs;
  const measure = (from: number, to: number): Record<string, number> => {
    const picked: number[] = [];
    let unanswered = 0;
    let good = 0;
    for (let i = 0; i < arrivals.length; i++) {
      const due = start + arrivals[i];
      if (due < from || due >= to) continue;
      let latency = latencies[i];
      if (Number.isNaN(latency)) {
        unanswered++;
        latency = endedAt - issuedAt[i];
      } else if (latency <= p99Ms) good++;
      picked.push(latency);
    }
    const sizes = batchSizes.filter((_, b) => batchAt[b] >= from && batchAt[b] < to + p99Ms);
    return {
      requests: picked.length,
      latencyP50Ms: percentile(picked, 50),
      latencyP99Ms: percentile(picked, 99),
      goodputPerSec: (good * 1000) / (to - from),
      withinTarget: picked.length === 0 ? Number.NaN : good / picked.length,
      unanswered,
      meanBatchSize: sizes.length === 0 ? Number.NaN : sizes.reduce((a, b) => a + b, 0) / sizes.length,
    };
  };
  const whole = measure(windowStart, windowStart + durationMs);
  const metrics: Metrics = { arrivalPerSec: options.ratePerSec, p99Ms, ...whole, targetCuts: stats.dispatchReasons.target, delayCuts: stats.dispatchReasons.delay, fullCuts: stats.dispatchReasons.full };
  if (options.slowdown) {
    const half = durationMs / 2;
    for (const [name, from] of [['first', windowStart], ['second', windowStart + half]] as const) {
      for (const [key, value] of Object.entries(measure(from, from + half))) metrics[`${name}.${key}`] = value;
    }
  }
  const learned = stats.latencyTarget;
  if (learned !== undefined) {
    metrics.learnedFixedMs = learned.fixedMs;
    metrics.learnedPerItemMs = learned.perItemMs;
    metrics.lastWaitMs = learned.waitMs;
    metrics.marginMs = learned.marginMs;
    // What the batcher itself counted over the target, of the requests it answered (warm-up included).
    metrics.engineOverShare = stats.succeeded === 0 ? Number.NaN : learned.overTarget / stats.succeeded;
  }
  return metrics;
}
