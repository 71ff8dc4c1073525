/**
 * rx-batcher/nats: scale out over NATS JetStream. Needs the optional peer dependencies
 * `@nats-io/transport-node` and `@nats-io/jetstream`.
 *
 * @example
 * ```ts
 * import { natsTransport, serveBatches } from 'rx-batcher/nats';
 * ```
 * @module rx-batcher/nats
 */
export { natsTransport, type NatsTransportOptions } from './natsTransport';
export * from '../remote';
