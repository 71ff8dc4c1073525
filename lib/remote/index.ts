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
export { remoteBatcher, type RemoteBatcher, type RemoteBatcherOptions, type RemoteBatcherStats } from './remoteBatcher.js';
export { serveBatches, type BatchWorker, type ServeBatchesOptions, type WorkerStats } from './serveBatches.js';
export { v8Codec, jsonCodec, type Codec } from './codec.js';
export { RemoteBatchError, type RemoteErrorKind } from './RemoteBatchError.js';
export { DroppedMessageError, type DropReason } from './DroppedMessageError.js';
export type { AuthOptions } from './auth.js';
export type { BrokerEvent, LinkEvent } from './brokerEvents.js';
export { memoryTransport, type MemoryTransportOptions } from './memoryTransport.js';
export type {
  Backlog,
  BatchTransport,
  Delivery,
  ProducerLink,
  ReplyFrame,
  RequestMessage,
  WorkerLink,
  WorkerLinkOptions,
} from './transport.js';
