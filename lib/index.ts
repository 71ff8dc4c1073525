/**
 * rx-batcher: turn many single async calls into efficient batches. `Batcher` is the promise
 * API, `batchMap` the RxJS operator; both run on one batching engine.
 *
 * @example
 * ```ts
 * import { Batcher } from 'rx-batcher';
 * const batcher = new Batcher({ maxBatchSize: 32, maxDelayMs: 5, runBatch: (xs) => model.predictBatch(xs) });
 * ```
 * @module rx-batcher
 */
/* Batcher */
export { Batcher } from './batcher/Batcher.js';

/* Streaming outputs */
export { StreamingBatcher, type StreamingBatcherOptions, type StreamingBatcherStats, type StreamingRules, type StreamingRunBatch, type StreamOptions } from './batcher/StreamingBatcher.js';
export type { ChunkStream } from './batcher/ChunkStream.js';
export { skip, done, last, LastChunk, type Step, type StepSlot, type StepContext, type ContinuousBatching } from './core/steps.js';

/* Operators */
export { batchMap, batchMapSettled } from './operators/batchMap.js';

/* Helpers */
export { columnar, toColumns, type Columns } from './columnar.js';

/* Errors */
export {
  BatcherStoppedError,
  QueueFullError,
  RequestTimeoutError,
  BatchResultError,
  StreamBufferFullError,
  type QueueLimit,
  type StoppedWhen,
  type TimeoutPhase,
} from './errors/index.js';

/* Types */
export type {
  BatchContext,
  BatcherOptions,
  BatchMapOptions,
  BatchOutput,
  BatchReport,
  BatchSettings,
  BatchResults,
  BisectionStep,
  DispatchReason,
  Fulfilled,
  IsolateFailures,
  LatencyTarget,
  Rejected,
  RunBatch,
  RunOptions,
  Settlement,
  StopOptions,
  ConfigureOptions,
} from './types.js';
export type { BatcherStats } from './stats/statsSnapshot.js';
export type { LatencyTargetStats } from './core/latencyTarget.js';
