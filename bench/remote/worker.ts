// One model worker process of the scale-out benchmark. Configured by environment variables,
// talks to bench/remote/run.ts over IPC: { type: 'ready' }, then on { type: 'report' } it answers
// { type: 'report', cpuMicros, at, stats } (CPU time so far, and when it was read on this
// process's own clock, so its CPU rate needs no shared clock); on { type: 'stop' } it drains and exits.
import { performance } from 'node:perf_hooks';
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import { serveBatches } from '../../lib/remote';
import { benchModel, type BenchModelKind } from './model';

const env = process.env;

async function main(): Promise<void> {
  const transport = env.RXB_TRANSPORT === 'nats' ? natsTransport({ servers: env.RXB_URL }) : redisTransport({ url: env.RXB_URL });
  const worker = await serveBatches<number, number>(transport, env.RXB_SUBJECT!, benchModel(env.RXB_MODEL as BenchModelKind), {
    maxBatchSize: Number(env.RXB_MAX_BATCH ?? '64'),
    maxDelayMs: Number(env.RXB_MAX_DELAY_MS ?? '0'),
    // One batch at a time, as the model runs them: a worker's capacity is the model's.
    maxConcurrentBatches: Number(env.RXB_MAX_CONCURRENT ?? '1'),
    claimIdleMs: Number(env.RXB_CLAIM_IDLE_MS ?? '5000'),
    // The signed rows: the same key as the producer, base64.
    ...(env.RXB_AUTH_KEY ? { auth: { keys: [Buffer.from(env.RXB_AUTH_KEY, 'base64')] } } : {}),
  });
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'report') {
      const cpu = process.cpuUsage();
      process.send?.({ type: 'report', cpuMicros: cpu.user + cpu.system, at: performance.now(), stats: worker.stats() });
    } else if (message.type === 'stop') {
      void worker.stop({ drain: true }).then(() => process.disconnect());
    }
  });
  process.send?.({ type: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
