import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { remoteBatcher, redisTransport, type WorkerStats } from '../../lib/redis';
import { framesOf, initialSileroState, loadSileroVad, scoreSequentially, type SileroFrame, type SileroResult } from '../models';
import { loadSpeechClip } from '../speech/clip';
import { VAD_SUBJECT } from './vadWorker';

/**
 * What the scale-out recipe measured.
 *
 * @example
 * ```ts
 * const report = await runScaleOut({ url: 'redis://127.0.0.1:6379' });
 * console.log(report.framesPerSecond, report.workers.map((w) => w.meanBatchSize));
 * ```
 */
export interface ScaleOutReport {
  readonly streams: number;
  readonly frames: number;
  readonly seconds: number;
  readonly framesPerSecond: number;
  /** Largest |Δ| between a stream's probabilities and one-frame-at-a-time scoring in this process. */
  readonly maxDifference: number;
  /** Frames each stream scored above 0.5. */
  readonly speechFrames: number;
  readonly workers: readonly { readonly pid: number; readonly frames: number; readonly batches: number; readonly meanBatchSize: number }[];
}

/**
 * The recipe "Scale out with Redis Streams": starts `workers` Silero VAD worker processes
 * (`vadWorker.ts`) on the Redis at `url`, streams the speech clip as `streams` concurrent audio
 * streams through one `remoteBatcher` (each stream frame by frame, carrying its state), checks
 * every probability against one-frame-at-a-time scoring, and stops the workers.
 *
 * @example
 * ```ts
 * const report = await runScaleOut({ url: process.env.REDIS_URL!, workers: 2, streams: 16 });
 * ```
 */
export async function runScaleOut(options: { readonly url: string; readonly workers?: number; readonly streams?: number; readonly subject?: string }): Promise<ScaleOutReport> {
  const subject = options.subject ?? VAD_SUBJECT;
  const workerCount = options.workers ?? 2;
  const streamCount = options.streams ?? 16;
  const clip = loadSpeechClip();

  // The reference: the same clip scored one frame at a time, in this process.
  const vad = await loadSileroVad();
  const reference = await scoreSequentially(vad, clip.samples);
  await vad.close();

  const workers = await Promise.all(Array.from({ length: workerCount }, () => startVadWorker(options.url, subject)));
  const vadFrames = remoteBatcher<SileroFrame, SileroResult>(redisTransport({ url: options.url }), subject, { timeoutMs: 30_000 });
  try {
    const frames = framesOf(clip.samples);
    const started = performance.now();
    // #region front-end
    const scored = await Promise.all(
      Array.from({ length: streamCount }, async () => {
        let state = initialSileroState();
        const probabilities: number[] = [];
        for (const samples of frames) {
          const result = await vadFrames.run({ samples, state }); // one frame of one stream: the same call as with a local Batcher
          probabilities.push(result.probability);
          state = result.state;
        }
        return probabilities;
      }),
    );
    // #endregion front-end
    const seconds = (performance.now() - started) / 1000;
    let maxDifference = 0;
    for (const stream of scored) for (let i = 0; i < stream.length; i++) maxDifference = Math.max(maxDifference, Math.abs(stream[i] - reference[i]));
    const stats = await Promise.all(workers.map((w) => w.stop()));
    return {
      streams: streamCount,
      frames: frames.length * streamCount,
      seconds,
      framesPerSecond: (frames.length * streamCount) / seconds,
      maxDifference,
      speechFrames: scored[0].filter((p) => p > 0.5).length,
      workers: stats.map((s, i) => ({ pid: workers[i].pid, frames: s.succeeded, batches: s.batches, meanBatchSize: s.meanBatchSize })),
    };
  } finally {
    await vadFrames.stop();
    await Promise.all(workers.map((w) => w.kill()));
  }
}

interface VadWorkerProcess {
  readonly pid: number;
  /** Drains, then resolves with the worker's stats. */
  stop(): Promise<WorkerStats>;
  /** SIGKILL by PID if it is still running. */
  kill(): Promise<void>;
}

function startVadWorker(url: string, subject: string): Promise<VadWorkerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'vadWorker.ts')], {
    cwd: resolve(__dirname, '../..'),
    env: { ...process.env, REDIS_URL: url, VAD_SUBJECT: subject },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stats: WorkerStats | undefined;
  child.on('message', (m: { type: string; stats?: WorkerStats }) => {
    if (m.type === 'stats') stats = m.stats;
  });
  return new Promise((ready, fail) => {
    child.once('exit', (code) => fail(new Error(`a VAD worker exited (${code}) before it was ready; see its output above`)));
    child.once('message', () =>
      ready({
        pid: child.pid!,
        async stop() {
          child.send({ type: 'stop' });
          await exited;
          if (stats === undefined) throw new Error(`VAD worker ${child.pid} exited without reporting its stats`);
          return stats;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      }),
    );
  });
}
