export { BatcherStoppedError, type StoppedWhen } from './BatcherStoppedError';
export { QueueFullError, type QueueLimit } from './QueueFullError';
export { RequestTimeoutError, type TimeoutPhase } from './RequestTimeoutError';
export { BatchResultError } from './BatchResultError';
