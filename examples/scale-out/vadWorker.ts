// One Silero VAD model worker: `REDIS_URL=redis://… npx tsx examples/scale-out/vadWorker.ts`.
// Start as many as you like, on any machines that reach the Redis server: each pulls batches
// of frames from the shared `vad` stream when its model is free. SIGTERM drains and exits.
import { redisTransport } from 'rx-batcher/redis';
import { serveBatches } from 'rx-batcher/remote';
import { loadSileroVad, type SileroFrame, type SileroResult } from '../models';

/** The stream every VAD front end and worker shares. */
export const VAD_SUBJECT = 'vad';

async function main(): Promise<void> {
  const vad = await loadSileroVad();
  const worker = await serveBatches<SileroFrame, SileroResult>(
    redisTransport({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }),
    process.env.VAD_SUBJECT ?? VAD_SUBJECT,
    vad.runBatch,
    { maxBatchSize: 64, maxDelayMs: 2, claimIdleMs: 5000 },
  );
  const stop = async (): Promise<void> => {
    await worker.stop({ drain: true });
    await vad.close();
    // Tell the parent (when there is one) how this worker batched.
    process.send?.({ type: 'stats', stats: worker.stats(), model: vad.counts() });
    process.disconnect?.();
  };
  process.once('SIGTERM', () => void stop());
  process.on('message', (message: { type?: string }) => void (message.type === 'stop' && stop()));
  process.send?.({ type: 'ready' });
  if (process.send === undefined) console.log(`VAD worker ${process.pid} serving "${VAD_SUBJECT}"; Ctrl-C or SIGTERM to stop`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
