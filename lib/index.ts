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
export { Batcher } from './batcher/Batcher';

/* Operators */
export { batchMap, batchMapSettled } from './operators/batchMap';

/* Helpers */
export { columnar, toColumns, type Columns } from './columnar';

/* Errors */
export {
  BatcherStoppedError,
  QueueFullError,
  RequestTimeoutError,
  BatchResultError,
  type QueueLimit,
  type StoppedWhen,
  type TimeoutPhase,
} from './errors';

/* Types */
export type {
  BatchContext,
  BatcherOptions,
  BatchMapOptions,
  BatchOutput,
  BatchReport,
  BatchSettings,
  BatchResults,
  DispatchReason,
  Fulfilled,
  LatencyTarget,
  Rejected,
  RunBatch,
  RunOptions,
  Settlement,
  StopOptions,
  ConfigureOptions,
} from './types';
export type { BatcherStats } from './stats/statsSnapshot';
export type { LatencyTargetStats } from './core/latencyTarget';
