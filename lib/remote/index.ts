/**
 * rx-batcher/remote: scale out through a broker, whatever the transport: `remoteBatcher`
 * producers and `serveBatches` workers share one request stream.
 *
 * @example
 * ```ts
 * import { remoteBatcher } from 'rx-batcher/remote';
 * ```
 * @module rx-batcher/remote
 */
export { remoteBatcher, type RemoteBatcher, type RemoteBatcherOptions, type RemoteBatcherStats } from './remoteBatcher';
export { serveBatches, type BatchWorker, type ServeBatchesOptions, type WorkerStats } from './serveBatches';
export { v8Codec, jsonCodec, type Codec } from './codec';
export { RemoteBatchError, type RemoteErrorKind } from './RemoteBatchError';
export { DroppedMessageError, type DropReason } from './DroppedMessageError';
export type { AuthOptions } from './auth';
export { memoryTransport, type MemoryTransportOptions } from './memoryTransport';
export type {
  Backlog,
  BatchTransport,
  Delivery,
  ProducerLink,
  ReplyFrame,
  RequestMessage,
  WorkerLink,
  WorkerLinkOptions,
} from './transport';
