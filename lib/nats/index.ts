/* rx-batcher/nats: scale out over NATS JetStream. Needs the optional peer dependencies `@nats-io/transport-node` and `@nats-io/jetstream`. */
export { natsTransport, type NatsTransportOptions } from './natsTransport';
export * from '../remote';
