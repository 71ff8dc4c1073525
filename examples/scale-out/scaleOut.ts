import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { redisTransport } from 'rx-batcher/redis';
import { remoteBatcher, type WorkerStats } from 'rx-batcher/remote';
import { loadSileroVad, scoreSequentially, type SileroFrame, type SileroResult } from '../models';
import { loadSpeechClip } from '../speech/clip';
import { startVadServer, streamAudio, type SpeechEvent } from '../vad-server';
import { remoteSileroVad } from './remoteVad';
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
  /** Audio streams (WebSocket clients) served at once. */
  readonly streams: number;
  /** Frames scored, over every stream. */
  readonly frames: number;
  readonly seconds: number;
  readonly framesPerSecond: number;
  /** Largest |Δ| between a stream's probabilities and one-frame-at-a-time scoring in this process. */
  readonly maxDifference: number;
  /** The speech events of the first stream. */
  readonly events: readonly SpeechEvent[];
  /** Where the clip's speech lies, in samples. */
  readonly speech: { readonly start: number; readonly end: number };
  readonly workers: readonly { readonly pid: number; readonly frames: number; readonly batches: number; readonly meanBatchSize: number }[];
}

/**
 * The recipe "Scale out with Redis Streams": starts `workers` Silero VAD worker processes
 * (`vadWorker.ts`) on the Redis at `url`, starts the streaming VAD server of
 * `examples/vad-server` as a front end whose model is a `remoteBatcher` (no model of its own),
 * streams the speech clip from `streams` WebSocket clients at once, checks every probability
 * against one-frame-at-a-time scoring, and stops everything.
 *
 * @example
 * ```ts
 * const report = await runScaleOut({ url: process.env.REDIS_URL!, workers: 2, streams: 16 });
 * ```
 */
export async function runScaleOut(options: {
  readonly url: string; readonly workers?: number; readonly streams?: number; readonly subject?: string;
  /** How far behind real time a stream may fall before the VAD server tells it `overloaded` (its default: 1000). */
  readonly maxLagMs?: number;
}): Promise<ScaleOutReport> {
  const subject = options.subject ?? VAD_SUBJECT;
  const workerCount = options.workers ?? 2;
  const streamCount = options.streams ?? 16;
  const clip = loadSpeechClip();

  // The reference: the same clip scored one frame at a time, in this process.
  const vad = await loadSileroVad();
  const reference = await scoreSequentially(vad, clip.samples);
  await vad.close();

  const workers = await Promise.all(Array.from({ length: workerCount }, () => startVadWorker(options.url, subject)));
  try {
    // #region front-end
    // The VAD server, unchanged, as a front end: its "model" sends each frame to the workers.
    const scorer = remoteBatcher<SileroFrame, SileroResult>(redisTransport({ url: options.url }), subject, { timeoutMs: 30_000 });
    const server = await startVadServer({ port: 0, batching: false, vad: remoteSileroVad(scorer), ...(options.maxLagMs !== undefined ? { maxLagMs: options.maxLagMs } : {}) });
    const started = performance.now();
    const streams = await Promise.all(
      Array.from({ length: streamCount }, () => streamAudio(server.url, clip.samples, { probabilities: true })),
    );
    const seconds = (performance.now() - started) / 1000;
    await server.close();
    await scorer.stop({ drain: true });
    // #endregion front-end
    let maxDifference = 0;
    for (const { probabilities } of streams) {
      if (probabilities.length !== reference.length) throw new Error(`a stream got ${probabilities.length} probabilities for ${reference.length} frames`);
      for (let i = 0; i < probabilities.length; i++) maxDifference = Math.max(maxDifference, Math.abs(probabilities[i] - reference[i]));
    }
    const stats = await Promise.all(workers.map((w) => w.stop()));
    const frames = streams.reduce((sum, s) => sum + s.frames, 0);
    return {
      streams: streamCount,
      frames,
      seconds,
      framesPerSecond: frames / seconds,
      maxDifference,
      events: streams[0].events,
      speech: { start: clip.speechStart, end: clip.speechEnd },
      workers: stats.map((s, i) => ({ pid: workers[i].pid, frames: s.succeeded, batches: s.batches, meanBatchSize: s.meanBatchSize })),
    };
  } finally {
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
