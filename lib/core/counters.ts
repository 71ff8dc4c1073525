import type { BatchReport, DispatchReason } from '../types.js';
import type { LatencyTargetStats } from './latencyTarget.js';
import { BATCH_FAILED, CANCELLED, FAILED, REJECTED, SUCCEEDED, TIMED_OUT, type SettledState } from './request.js';

/** A finished batch that can describe itself; the report is built only if someone reads the stats. */
export interface FinishedBatch {
  report(): BatchReport;
}

/**
 * The engine's live, mutable counters. Only the engine writes them, in O(1) per event;
 * facades turn them into immutable snapshots on demand.
 */
export class Counters {
  submitted = 0;
  succeeded = 0;
  failed = 0;
  cancelled = 0;
  timedOut = 0;
  rejected = 0;
  /** Requests waiting in a queue now. */
  queued = 0;
  /** Requests in running batches, not yet settled. */
  inFlight = 0;
  /** Batches running now. */
  batchesInFlight = 0;
  batches = 0;
  failedBatches = 0;
  /** Batches whose callers had all gone before they finished: freed at once, late result dropped. */
  abandonedBatches = 0;
  /** Batches whose `runBatch` call failed and that were split to isolate the failing input (`isolateFailures: 'bisect'`). */
  bisections = 0;
  /** The extra `runBatch` calls those bisections made. */
  bisectionCalls = 0;
  /** Calls that joined a shared slot (`dedupeBy`) instead of adding an input. */
  merged = 0;
  /** `batchSizes[n]`: how many batches of n inputs were dispatched. */
  readonly batchSizes: number[] = [];
  readonly dispatchReasons: Record<DispatchReason, number> = { full: 0, delay: 0, flush: 0, drain: 0, target: 0 };
  /** The latency-target controller, once a `latencyTarget` was set: what it believes, for stats. */
  latencyTarget: { snapshot(): LatencyTargetStats | undefined } | undefined = undefined;
  /** The most recently finished batch (its report is built lazily: stats are often not read). */
  lastBatch: FinishedBatch | undefined = undefined;

  /** Counts one settled request (a switch, not a keyed store: this runs once per request). */
  count(state: SettledState): void {
    switch (state) {
      case SUCCEEDED: this.succeeded++; break;
      case FAILED: case BATCH_FAILED: this.failed++; break;
      case CANCELLED: this.cancelled++; break;
      case TIMED_OUT: this.timedOut++; break;
      case REJECTED: this.rejected++; break;
    }
  }
}
