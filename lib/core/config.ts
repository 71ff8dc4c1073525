import type { SchedulerLike } from 'rxjs';
import type { IsolateFailures, LatencyTarget, RunBatch } from '../types.js';
import type { ShareRule } from './dedupe.js';
import type { StreamModel } from './streamRunner.js';

/**
 * Validated batching rules with every default filled in. Built once, when a `Batcher` or a
 * `batchMap` subscription is created; the engine reads nothing else.
 */
export interface BatchConfig<I, O> {
  readonly name: string;
  readonly runBatch: RunBatch<I, O>;
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly maxConcurrentBatches: number;
  readonly maxQueueSize: number;
  readonly timeoutMs: number;
  readonly defaults: Readonly<Record<string, unknown>> | undefined;
  readonly defaultKeys: readonly string[];
  readonly partitionBy: ((input: I) => string) | undefined;
  /** What one input costs; undefined: every input weighs 1 and only counts matter. */
  readonly weigh: ((input: I) => number) | undefined;
  /** A batch's weight budget (Infinity: none). */
  readonly maxBatchWeight: number;
  /** A waiting request gains one priority level per this many ms (Infinity: strict priorities). */
  readonly agingMs: number;
  /** Identical inputs (equal keys) waiting or running share one slot; undefined: no dedupe. */
  readonly dedupeBy: ((input: I) => string | number) | undefined;
  /** A face's own way of sharing inputs, in place of `dedupeBy` (the DataLoader drop-in's cache entries). */
  readonly share?: ShareRule<I, O>;
  /** Windows end as soon as waiting longer would break this objective (`maxDelayMs` still caps them); undefined: none. */
  readonly latencyTarget: LatencyTarget | undefined;
  /** What a batch whose `runBatch` call failed does: fail every caller, or bisect (lib/core/bisect.ts). */
  readonly isolateFailures: IsolateFailures;
  /** Times batch windows. */
  readonly windowScheduler: SchedulerLike;
  /** Times request deadlines. */
  readonly deadlineScheduler: SchedulerLike;
  /**
   * `maxQueueSize` counts running requests too: a remote producer's "queue" is every request
   * sent and not yet answered (its batches run in the workers, not here).
   */
  readonly limitCountsRunning: boolean;
  /** What a `RequestTimeoutError` advises; the face knows where capacity comes from. */
  readonly timeoutHint: string | undefined;
  /**
   * A queue that reaches `maxBatchSize` still waits for its window to close, and is then cut
   * into batches of `maxBatchSize` (DataLoader's rule), instead of being due at once. Lets a
   * face promise that `runBatch` is never called from inside a caller's own call. Default false.
   */
  readonly fullWaitsForWindow?: boolean;
  /** Streaming outputs (StreamingBatcher): batches produce steps of chunks instead of one result per input. */
  readonly stream?: StreamModel<I>;
}

