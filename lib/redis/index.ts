/* rx-batcher/redis: scale out over Redis Streams. Needs the optional peer dependency `ioredis`. */
export { redisTransport, type RedisTransportOptions } from './redisTransport';
export * from '../remote';
