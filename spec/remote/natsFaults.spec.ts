import { natsTransport } from '../../lib/nats';
import { startNats, type TestBroker } from './brokers';
import { describeFaultContract } from './faults';

// NATS JetStream through a TCP proxy, against a private `nats-server -js` with a file store
// (the transport's default), so a restart keeps the requests. A missing binary fails these
// tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startNats();
});
afterAll(async () => {
  await broker?.stop();
});

describeFaultContract('NATS JetStream', () => ({
  kind: 'nats',
  broker: () => broker,
  // Stopped gracefully: JetStream's file store writes in the background, so a SIGKILL could drop
  // the newest acknowledged requests (Redis with appendfsync always cannot).
  crashRestart: false,
  upstream: () => ({ port: Number(new URL(broker.url).port) }),
  proxyUrl: (proxy) => proxy.url('nats'),
  transport: (proxy) => natsTransport({ servers: proxy === undefined ? broker.url : proxy.url('nats') }),
}));
