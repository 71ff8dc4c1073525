// Fault scenarios, as an operator would try them (npm run bench:faults [-- --nats]): a producer
// in this process and two worker processes (model: 5 ms, 2x+1; maxBatchSize 32, claimIdleMs
// 500) reach a private broker (Redis: AOF with appendfsync always; NATS: file store) through a
// TCP proxy; 5,000 requests spread over 5 s, timeoutMs 20 s. For each fault: answers correct,
// wrong and timed out, and the time until every caller had settled (from the first request).
// Prints a table; writes nothing.
import { performance } from 'node:perf_hooks';
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, type BatchTransport } from '../../lib/remote';
import { startNats, startRedis, type TestBroker } from '../../spec/remote/brokers';
import { startChildWorker, type ChildWorker } from '../../spec/remote/childWorkers';
import { startProxy, type TcpProxy } from '../../spec/remote/support/tcpProxy';

const N = 5000;
const SPREAD_MS = 5000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Scenario {
  name: string;
  fault(env: { proxy: TcpProxy; broker: TestBroker; workers: ChildWorker[] }): Promise<void>;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'every connection cut every 700 ms (7 cuts)',
    async fault({ proxy }) {
      for (let i = 0; i < 7; i++) {
        await sleep(700);
        proxy.cut();
      }
    },
  },
  {
    name: 'broker restarted once',
    async fault({ broker }) {
      await sleep(2000);
      const t = performance.now();
      await broker.restart({ crash: kind === 'redis' });
      console.log(`  broker down ≈ ${Math.round(performance.now() - t)} ms`);
    },
  },
  {
    // Not the whole run: with 50 ms each way a worker's pull of ≤ 32 takes ≥ 100 ms, so the
    // one left could not keep up with 1,000 requests/s (that would measure capacity, not loss).
    name: 'a worker SIGKILLed in 1.5 s of 50 ms latency each way',
    async fault({ proxy, workers }) {
      await sleep(1500);
      proxy.setLatency(50);
      await sleep(500);
      await workers[0].kill();
      await sleep(1000);
      proxy.setLatency(0);
    },
  },
];

const kind: 'redis' | 'nats' = process.argv.includes('--nats') ? 'nats' : 'redis';

async function run(scenario: Scenario, broker: TestBroker): Promise<Record<string, string | number>> {
  const proxy = await startProxy(kind === 'redis' ? { path: broker.url } : { port: Number(new URL(broker.url).port) });
  const url = proxy.url(kind);
  const subject = `faults-${Date.now().toString(36)}`;
  const transport = (): BatchTransport => (kind === 'redis' ? redisTransport({ url }) : natsTransport({ servers: url }));
  const env = { RXB_CLAIM_IDLE_MS: '500', RXB_BATCH_MS: '5', RXB_MAX_BATCH: '32' };
  const workers = await Promise.all([0, 1].map(() => startChildWorker(kind, url, subject, env)));
  const producer = remoteBatcher<number, number>(transport(), subject, { timeoutMs: 20_000, onError: () => undefined });
  let correct = 0;
  let wrong = 0;
  let timedOut = 0;
  let other = 0;
  try {
    await producer.run(-1);
    const started = performance.now();
    const calls: Promise<void>[] = [];
    const issue = (async () => {
      for (let i = 0; i < N; i += 10) {
        for (let x = i; x < i + 10; x++) {
          calls.push(producer.run(x).then((y) => void (y === 2 * x + 1 ? correct++ : wrong++), (e: Error) => void (e.name === 'RequestTimeoutError' ? timedOut++ : other++)));
        }
        await sleep((10 * SPREAD_MS) / N);
      }
    })();
    await scenario.fault({ proxy, broker, workers });
    await issue;
    await Promise.all(calls);
    const stats = producer.stats() as unknown as Record<string, number>;
    return {
      fault: scenario.name, correct, wrong, 'timed out': timedOut, other,
      'all settled after s': Number(((performance.now() - started) / 1000).toFixed(1)),
      resent: stats.resent ?? '–', 'duplicates dropped': stats.duplicatesDropped,
    };
  } finally {
    await producer.stop();
    await Promise.all(workers.map((w) => w.kill()));
    await proxy.close();
  }
}

async function main(): Promise<void> {
  const rows = [];
  for (const scenario of SCENARIOS) {
    const broker = kind === 'redis' ? await startRedis({ appendfsync: 'always' }) : await startNats();
    try {
      console.log(`${kind}: ${scenario.name}`);
      rows.push(await run(scenario, broker));
    } finally {
      await broker.stop();
    }
  }
  console.table(rows);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
