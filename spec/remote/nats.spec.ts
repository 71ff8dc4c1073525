import { natsTransport } from '../../lib/nats';
import { remoteBatcher, serveBatches } from '../../lib/remote';
import { startNats, type TestBroker } from './brokers';
import { describeTransportContract } from './contract';

// NATS JetStream, against a private `nats-server -js` started from the binary for this file
// on a free loopback port (never the machine's own instance). A missing binary fails these
// tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startNats();
});
afterAll(async () => {
  await broker?.stop();
});

describeTransportContract('NATS JetStream', () => ({
  // File storage, so the broker restart in the suite keeps the requests.
  transport: () => natsTransport({ servers: broker.url }),
  broker: { kind: 'nats', instance: () => broker },
}), { processes: true });

describe('NATS JetStream specifics', () => {
  it('with pubAck: false requests are published without waiting for JetStream, and still answered once', async () => {
    const subject = `no-puback-${process.pid}`;
    const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => xs.map((x) => x + 1), { maxBatchSize: 16, claimIdleMs: 300 });
    const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url, pubAck: false }), subject, { timeoutMs: 10_000 });
    try {
      await expect(Promise.all(Array.from({ length: 50 }, (_, i) => producer.run(i)))).resolves.toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(producer.stats()).toMatchObject({ succeeded: 50, duplicatesDropped: 0 });
    } finally {
      await producer.stop();
      await worker.stop();
    }
  });
});
