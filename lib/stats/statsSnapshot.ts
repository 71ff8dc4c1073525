import { freeze } from 'immer';
import type { Counters } from '../core/counters.js';
import type { LatencyTargetStats } from '../core/latencyTarget.js';
import type { BatchReport, BatchSettings, DispatchReason } from '../types.js';

/**
 * An immutable (frozen) picture of a batcher at one moment. Successive snapshots share
 * unchanged parts (immer), so keeping a history is cheap.
 *
 * Every request submitted is in exactly one of these places:
 * `submitted = queued + inFlight + succeeded + failed + cancelled + timedOut + rejected`.
 *
 * @example
 * ```ts
 * const s = batcher.stats();
 * console.log(`${s.queued} waiting, mean batch ${s.meanBatchSize.toFixed(1)}`);
 * ```
 */
export interface BatcherStats {
  /** The batcher's `name`. */
  readonly name: string;
  /** Requests waiting in a queue. */
  readonly queued: number;
  /** Requests in running batches, not yet settled. */
  readonly inFlight: number;
  /** Batches running now. */
  readonly batchesInFlight: number;
  /** Every `run()` call (and `run$` subscription) so far, including refused ones. */
  readonly submitted: number;
  /** Settled with a value. */
  readonly succeeded: number;
  /** Settled with an error from `runBatch` (thrown, or an `Error` in its slot, or a bad result). */
  readonly failed: number;
  /** Aborted by their signal, or unsubscribed. */
  readonly cancelled: number;
  /** Their deadline passed. */
  readonly timedOut: number;
  /** Refused without running: queue full, batcher stopped, bad call options or input. */
  readonly rejected: number;
  /** Batches dispatched. */
  readonly batches: number;
  /** Batches whose `runBatch` threw, rejected or returned a bad result. */
  readonly failedBatches: number;
  /**
   * Batches abandoned because every caller had gone (aborted, timed out) before `runBatch`
   * answered: their `ctx.signal` was aborted, their slot freed at once, and whatever they
   * returned later was dropped. Not counted in `failedBatches`.
   */
  readonly abandonedBatches: number;
  /**
   * Batches whose `runBatch` call threw, rejected or errored and were then split and retried to
   * isolate the failing input (`isolateFailures: 'bisect'`); also counted in `failedBatches`.
   */
  readonly bisections: number;
  /** The extra `runBatch` calls those bisections made (at most 2⌈log₂ n⌉ for a batch of n). */
  readonly bisectionCalls: number;
  /**
   * Calls that joined an identical input already waiting or running (`dedupeBy`) instead of
   * adding one: they share its model result. Each is a call like any other in `submitted`,
   * `queued` / `inFlight` and its outcome; batch sizes count inputs, so a batch of 3 inputs
   * may answer 10 calls.
   */
  readonly merged: number;
  /** Mean inputs per dispatched batch (0 before the first). */
  readonly meanBatchSize: number;
  /** Batch-size histogram: `batchSizes[n]` batches held n inputs. */
  readonly batchSizes: Readonly<Record<number, number>>;
  /** How many batches were sealed for each reason. */
  readonly dispatchReasons: Readonly<Record<DispatchReason, number>>;
  /** The most recently finished batch. */
  readonly lastBatch: BatchReport | undefined;
  /** The batching rules in force (they change with `configure()`). */
  readonly settings: BatchSettings;
  /**
   * While a `latencyTarget` is in force: the batch time it learned, the wait it chose last and
   * how many requests came out over the target (see the guide's latency-target page).
   */
  readonly latencyTarget: LatencyTargetStats | undefined;
  /** `stop()` was called. */
  readonly stopped: boolean;
}


const REASONS = ['full', 'delay', 'flush', 'drain', 'target'] as const;
/**
 * Turns live counters into a snapshot, reusing `previous` where nothing changed.
 */
export function takeSnapshot(
  previous: BatcherStats | undefined,
  name: string,
  counters: Counters,
  stopped: boolean,
  settings: BatchSettings,
): BatcherStats {
  const base = previous ?? EMPTY;
  // Parts that did not change are shared with `previous`; new parts are built once and frozen
  // with immer's `freeze`. (A `produce` draft costs ~15 µs here, too much for a stream that
  // emits after every batch.)
  const sizes = counters.batchSizes;
  let items = 0;
  let sizesChanged = false;
  for (let n = 1; n < sizes.length; n++) {
    const count = sizes[n];
    if (count === undefined) continue;
    items += n * count;
    if (base.batchSizes[n] !== count) sizesChanged = true;
  }
  const reasons = counters.dispatchReasons;
  const next: BatcherStats = {
    name,
    queued: counters.queued,
    inFlight: counters.inFlight,
    batchesInFlight: counters.batchesInFlight,
    submitted: counters.submitted,
    succeeded: counters.succeeded,
    failed: counters.failed,
    cancelled: counters.cancelled,
    timedOut: counters.timedOut,
    rejected: counters.rejected,
    batches: counters.batches,
    failedBatches: counters.failedBatches,
    abandonedBatches: counters.abandonedBatches,
    bisections: counters.bisections,
    bisectionCalls: counters.bisectionCalls,
    merged: counters.merged,
    meanBatchSize: counters.batches === 0 ? 0 : items / counters.batches,
    batchSizes: sizesChanged ? freeze(histogram(sizes)) : base.batchSizes,
    dispatchReasons: REASONS.some((r) => base.dispatchReasons[r] !== reasons[r]) ? freeze({ ...reasons }) : base.dispatchReasons,
    lastBatch: counters.lastBatch?.report(),
    settings,
    latencyTarget: counters.latencyTarget?.snapshot(),
    stopped,
  };
  return previous !== undefined && sameStats(previous, next) ? previous : freeze(next);
}

function histogram(sizes: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (let n = 1; n < sizes.length; n++) if (sizes[n] !== undefined) out[n] = sizes[n];
  return out;
}

function sameStats(a: BatcherStats, b: BatcherStats): boolean {
  for (const key of Object.keys(b) as (keyof BatcherStats)[]) if (a[key] !== b[key]) return false;
  return true;
}

const NO_SETTINGS: BatchSettings = Object.freeze({ maxBatchSize: 0, maxDelayMs: 0, maxConcurrentBatches: 0, maxQueueSize: 0, maxBatchWeight: 0, agingMs: 0 });

const EMPTY: BatcherStats = freeze(
  {
    name: '',
    queued: 0, inFlight: 0, batchesInFlight: 0, submitted: 0, succeeded: 0, failed: 0, cancelled: 0,
    timedOut: 0, rejected: 0, batches: 0, failedBatches: 0, abandonedBatches: 0, bisections: 0, bisectionCalls: 0, merged: 0, meanBatchSize: 0, batchSizes: {},
    dispatchReasons: { full: 0, delay: 0, flush: 0, drain: 0, target: 0 }, lastBatch: undefined, settings: NO_SETTINGS, latencyTarget: undefined, stopped: false,
  },
  true,
);
