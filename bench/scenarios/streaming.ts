import { done, last, skip, StreamingBatcher, type ContinuousBatching, type Step } from '../../lib';
import { seededRandom } from '../../examples/models/seededRandom';
import { openLoop, poissonArrivals } from '../harness/openLoop';
import { now, sleep } from '../harness/process';
import { percentile } from '../harness/statistics';
import type { Metrics } from '../harness/tasks';

/**
 * How long outputs are, in steps (tokens): long-tailed as real generations are, or uniform.
 *
 * @example
 * ```ts
 * const shape: LengthShape = { kind: 'lognormal', median: 30, sigma: 1, cap: 1000 };
 * ```
 */
export type LengthShape =
  | { readonly kind: 'lognormal'; readonly median: number; readonly sigma: number; readonly cap: number }
  | { readonly kind: 'uniform'; readonly min: number; readonly max: number };

/**
 * Options of {@link measureStreaming}: one way of batching, one shape of outputs, one load.
 *
 * @example
 * ```ts
 * const options: StreamingOptions = { mode: 'continuous', lengths: { kind: 'uniform', min: 1, max: 200 }, load: { kind: 'backlog', requests: 256 }, seed: 9, overheadMs: 5, perItemMs: 0.05, maxBatchSize: 64 };
 * ```
 */
export interface StreamingOptions {
  /** `continuous`: items join and leave between steps; `whole-batch`: a batch runs until its longest output is done. */
  readonly mode: 'continuous' | 'whole-batch';
  readonly lengths: LengthShape;
  /**
   * `backlog`: every request issued at once; throughput is measured while some still wait (at
   * saturation). `poisson`: open-loop arrivals; time to first chunk is measured.
   */
  readonly load: { readonly kind: 'backlog'; readonly requests: number } | { readonly kind: 'poisson'; readonly ratePerSec: number; readonly durationMs: number };
  readonly seed: number;
  /** A step costs `overheadMs + perItemMs × active items` (a timer: sleeping, not computing). */
  readonly overheadMs: number;
  readonly perItemMs: number;
  readonly maxBatchSize: number;
}

/**
 * The output lengths of requests 0, 1, 2, …: the same seed gives both ways of batching the
 * same requests.
 *
 * @example
 * ```ts
 * outputLengths({ kind: 'uniform', min: 1, max: 200 }, 3, 9); // e.g. [57, 181, 4]
 * ```
 */
export function outputLengths(shape: LengthShape, count: number, seed: number): Int32Array {
  const random = seededRandom(seed);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    if (shape.kind === 'uniform') {
      out[i] = shape.min + Math.floor(random() * (shape.max - shape.min + 1));
    } else {
      // Box–Muller: one standard normal from two uniforms.
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      out[i] = Math.min(shape.cap, Math.max(1, Math.round(shape.median * Math.exp(shape.sigma * z))));
    }
  }
  return out;
}

/**
 * Requests per second that whole-batch streaming serves at full batches, by the cost model
 * alone (no timers): each batch of `batch` takes, step after step, `overheadMs + perItemMs ×`
 * the outputs not yet finished, until its longest is. Scenario 9 offers 80% of this.
 *
 * @example
 * ```ts
 * wholeBatchCapacity(outputLengths(shape, 6400, 9), 64, 5, 0.05); // ≈ 30 requests/s for log-normal(30, 1)
 * ```
 */
export function wholeBatchCapacity(lengths: Int32Array, batch: number, overheadMs: number, perItemMs: number): number {
  let ms = 0;
  let batches = 0;
  for (let start = 0; start + batch <= lengths.length; start += batch) {
    const sorted = Array.from(lengths.subarray(start, start + batch)).sort((a, b) => a - b);
    let active = batch;
    let step = 0;
    for (const length of sorted) {
      for (; step < length; step++) ms += overheadMs + perItemMs * active;
      active--;
    }
    batches++;
  }
  return (batches * batch * 1000) / ms;
}

/**
 * Scenario 9: one `StreamingBatcher` (`maxBatchSize` 64, one slot) on a simulated
 * autoregressive model, either with continuous batching or whole-batch streaming. With a
 * backlog: chunks per second while requests still wait (from the first request to the moment
 * the last one is taken into a batch). With Poisson arrivals: time from each call to its first
 * chunk. When the measurement ends the model fast-forwards (steps cost nothing) so the run
 * finishes at once; every request must still settle with all its chunks.
 *
 * @example
 * ```ts
 * const m = await measureStreaming({ mode: 'whole-batch', lengths: { kind: 'uniform', min: 1, max: 200 }, load: { kind: 'backlog', requests: 256 }, seed: 9, overheadMs: 5, perItemMs: 0.05, maxBatchSize: 64 });
 * ```
 */
export async function measureStreaming(options: StreamingOptions): Promise<Metrics> {
  const { load, overheadMs, perItemMs, maxBatchSize } = options;
  const count = load.kind === 'backlog' ? load.requests : poissonArrivals(load.ratePerSec, load.durationMs, options.seed).length;
  const lengths = outputLengths(options.lengths, count, options.seed);
  let fast = false;
  let steps = 0;
  let itemSteps = 0;
  let lastTakenAt = Number.NaN;
  let taken = 0;
  const step = async (active: number): Promise<void> => {
    steps++;
    itemSteps += active;
    await sleep(fast ? 0 : overheadMs + perItemMs * active);
  };
  const tookIn = (n: number): void => {
    taken += n;
    if (taken === count) lastTakenAt = now();
  };
  const continuous: ContinuousBatching<number, number, { left: number }> = {
    init: (i) => {
      tookIn(1);
      return { left: lengths[i] };
    },
    runStep: async (states) => {
      await step(states.length);
      return states.map((s) => (--s.left === 0 ? last(1) : 1));
    },
  };
  async function* wholeBatch(inputs: readonly number[]): AsyncGenerator<Step<number>> {
    tookIn(inputs.length);
    const left = inputs.map((i) => lengths[i]);
    let active = left.length;
    while (active > 0) {
      await step(active);
      yield left.map((l, k) => {
        if (l <= 0) return skip;
        left[k] = l - 1;
        if (l - 1 > 0) return 1;
        active--;
        return last(1);
      });
    }
  }
  const batcher = new StreamingBatcher<number, number>({
    name: 'bench',
    maxBatchSize,
    maxDelayMs: 2,
    maxBufferedChunks: Infinity,
    ...(options.mode === 'continuous' ? { continuous } : { runBatch: wholeBatch }),
  });

  const issuedAt = new Float64Array(count);
  const firstAt = new Float64Array(count).fill(Number.NaN);
  const received = new Int32Array(count);
  const chunkTimes: number[] = [];
  let settled = 0;
  let failed = 0;
  const finished = new Promise<void>((resolve) => {
    const issue = (i: number): void => {
      issuedAt[i] = now();
      batcher.stream(i).subscribe({
        next: () => {
          const t = now();
          if (received[i]++ === 0) firstAt[i] = t;
          chunkTimes.push(t);
        },
        error: () => {
          failed++;
          if (++settled === count) resolve();
        },
        complete: () => {
          if (++settled === count) resolve();
        },
      });
    };
    if (load.kind === 'backlog') {
      for (let i = 0; i < count; i++) issue(i);
    } else {
      void openLoop(poissonArrivals(load.ratePerSec, load.durationMs, options.seed), (i) => issue(i));
    }
  });

  const start = now();
  let metrics: Metrics;
  if (load.kind === 'backlog') {
    while (Number.isNaN(lastTakenAt)) await sleep(5);
    const windowMs = lastTakenAt - start;
    const inWindow = chunkTimes.filter((t) => t <= lastTakenAt).length;
    metrics = { requests: count, windowMs, chunksInWindow: inWindow, chunksPerSec: (inWindow * 1000) / windowMs };
  } else {
    // Every first chunk, or 3 s past the last arrival (then the rest count at what they had waited: a lower bound).
    const cutoff = start + load.durationMs + 3_000;
    while (now() < cutoff && firstAt.some((t) => Number.isNaN(t))) await sleep(10);
    const ended = now();
    const ttfc = Array.from(firstAt, (t, i) => (Number.isNaN(t) ? ended - issuedAt[i] : t - issuedAt[i]));
    metrics = {
      requests: count,
      arrivalPerSec: load.ratePerSec,
      ttfcP50Ms: percentile(ttfc, 50),
      ttfcP90Ms: percentile(ttfc, 90),
      ttfcP99Ms: percentile(ttfc, 99),
      noFirstChunk: firstAt.filter((t) => Number.isNaN(t)).length,
    };
  }
  fast = true;
  await finished;
  const stats = batcher.stats();
  await batcher.stop();
  let missing = 0;
  for (let i = 0; i < count; i++) if (received[i] !== lengths[i]) missing++;
  return {
    ...metrics,
    meanLength: lengths.reduce((a, b) => a + b, 0) / count,
    meanActivePerStep: itemSteps / steps,
    steps,
    batches: stats.batches,
    admittedBetweenSteps: stats.admittedBetweenSteps,
    failed,
    // Correctness, not speed: every request got exactly its own number of chunks.
    wrongChunkCounts: missing,
  };
}
