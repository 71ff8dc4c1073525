import { redisTransport } from '../../lib/redis';
import { startRedis, type TestBroker } from './brokers';
import { describeTransportContract } from './contract';

// Redis Streams, against a private redis-server started from the binary for this file
// (never the machine's own instance). A missing binary fails these tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startRedis();
});
afterAll(async () => {
  await broker?.stop();
});

describeTransportContract('Redis Streams', () => ({
  transport: () => redisTransport({ url: broker.url, pollMs: 200 }),
  broker: { kind: 'redis', instance: () => broker },
}), { processes: true });
