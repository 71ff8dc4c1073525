export { BatcherStoppedError, type StoppedWhen } from './BatcherStoppedError.js';
export { QueueFullError, type QueueLimit } from './QueueFullError.js';
export { RequestTimeoutError, type TimeoutPhase } from './RequestTimeoutError.js';
export { BatchResultError } from './BatchResultError.js';
export { StreamBufferFullError } from './StreamBufferFullError.js';
