import { redisTransport } from '../../lib/redis';
import { startRedis, type TestBroker } from './brokers';
import { describeFaultContract } from './faults';

// Redis Streams through a TCP proxy, against a private redis-server that writes every command
// to its append-only file before answering (appendfsync always), so a crash loses nothing
// acknowledged. A missing binary fails these tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startRedis({ appendfsync: 'always' });
});
afterAll(async () => {
  await broker?.stop();
});

describeFaultContract('Redis Streams', () => ({
  kind: 'redis',
  proxyUrl: (proxy) => proxy.url('redis'),
  broker: () => broker,
  crashRestart: true,
  upstream: () => ({ path: broker.url }),
  transport: (proxy) => redisTransport({ url: proxy === undefined ? broker.url : proxy.url('redis'), pollMs: 200 }),
}));
