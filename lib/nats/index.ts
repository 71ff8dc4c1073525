/**
 * rx-batcher/nats: scale out over NATS JetStream. Needs the optional peer dependencies
 * `@nats-io/transport-node` and `@nats-io/jetstream`.
 *
 * @example
 * ```ts
 * import { natsTransport } from 'rx-batcher/nats';
 * import { serveBatches } from 'rx-batcher/remote';
 * ```
 * @module rx-batcher/nats
 */
export { natsTransport, type NatsTransportOptions } from './natsTransport.js';
// remoteBatcher, serveBatches and the codecs live in 'rx-batcher/remote'.
