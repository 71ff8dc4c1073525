/**
 * rx-batcher/redis: scale out over Redis Streams. Needs the optional peer dependency `ioredis`.
 *
 * @example
 * ```ts
 * import { redisTransport, remoteBatcher } from 'rx-batcher/redis';
 * ```
 * @module rx-batcher/redis
 */
export { redisTransport, type RedisTransportOptions } from './redisTransport';
export * from '../remote';
