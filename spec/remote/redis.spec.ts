import { Redis } from 'ioredis';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, serveBatches } from '../../lib/remote';
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

describe('Redis Streams specifics', () => {
  it('a worker recreates its consumer group when the stream vanished (e.g. a restart without persistence)', async () => {
    const subject = `vanishing-${process.pid}`;
    const errors: string[] = [];
    const worker = await serveBatches<number, number>(redisTransport({ url: broker.url, pollMs: 50 }), subject, (xs) => xs.map((x) => x + 1), {
      maxBatchSize: 16, claimIdleMs: 300, onError: (e) => errors.push(e.message),
    });
    const producer = remoteBatcher<number, number>(redisTransport({ url: broker.url }), subject, { timeoutMs: 10_000 });
    const admin = new Redis(broker.url);
    try {
      await expect(producer.run(1)).resolves.toBe(2);
      await admin.del(`rxb:${subject}`); // stream and consumer group gone
      await expect(producer.run(2)).resolves.toBe(3);
      expect(await admin.xinfo('GROUPS', `rxb:${subject}`)).toHaveLength(1);
    } finally {
      admin.disconnect();
      await producer.stop();
      await worker.stop();
    }
  });
});
