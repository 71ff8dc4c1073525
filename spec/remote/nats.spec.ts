import { natsTransport } from '../../lib/nats';
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
