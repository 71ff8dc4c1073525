/**
 * rx-batcher/redis: scale out over Redis Streams. Needs the optional peer dependency `ioredis`.
 *
 * @example
 * ```ts
 * import { redisTransport } from 'rx-batcher/redis';
 * import { remoteBatcher } from 'rx-batcher/remote';
 * ```
 * @module rx-batcher/redis
 */
export { redisTransport, type RedisTransportOptions } from './redisTransport.js';
// remoteBatcher, serveBatches and the codecs live in 'rx-batcher/remote'.
