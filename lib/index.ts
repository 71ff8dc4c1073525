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
  BatchingOptions,
  BatchOutput,
  DispatchReason,
  RunBatch,
  RunOptions,
  Settlement,
  StopOptions,
} from './types';
export type { BatcherStats } from './stats/statsSnapshot';
export type { BatchReport } from './core/counters';
