import { FRAMES_PER_SECOND, INPUT_SAMPLES, initialSileroState, loadSileroVad, type SileroVad } from '../models';
import { startVadServer } from '../vad-server';
import { runLiveStreams, runStreams, type LiveReport } from './loadGenerator';
import { runLiveStreamsInWorker, runStreamsInWorker } from './loadWorker';

/**
 * What one mode of the demo measured.
 *
 * @example
 * ```ts
 * console.log(`${result.label}: ${result.framesPerSecond.toFixed(0)} frames/s`);
 * ```
 */
export interface DemoResult {
  readonly label: string;
  readonly batching: boolean;
  /** Frames scored and answered while the clock ran. */
  readonly frames: number;
  readonly seconds: number;
  readonly framesPerSecond: number;
  /** How many live 16 kHz streams this throughput could keep up with: frames/s ÷ 31.25. */
  readonly realtimeStreams: number;
  /** Per frame, from sending it to receiving its probability. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Frames per model call. */
  readonly meanBatchSize: number;
}

/**
 * Options of {@link runVadDemo}.
 *
 * @example
 * ```ts
 * await runVadDemo({ streams: 8, durationMs: 300 });
 * ```
 */
export interface VadDemoOptions {
  /** Simulated audio streams, each its own WebSocket connection. @default 64 */
  readonly streams?: number;
  /** How long each mode runs. @default 4000, or no limit when `framesPerStream` is given */
  readonly durationMs?: number;
  /** Stop each stream after this many frames instead (tests use it: the counts are then exact). */
  readonly framesPerStream?: number;
  /** Largest batch when batching. @default 64 */
  readonly maxBatchSize?: number;
  /** How long a frame may wait for companions when batching. @default 2 */
  readonly maxDelayMs?: number;
  /** Called about every 250 ms while a mode runs, and once when it ends. */
  readonly onProgress?: (label: string, frames: number, elapsedMs: number) => void;
  /** Run the simulated clients in a worker thread, off the server's event loop. @default true */
  readonly clientsInWorker?: boolean;
  /** A loaded model to use (not closed); by default the demo loads and closes one. */
  readonly vad?: SileroVad;
}

/**
 * The `npm run demo` experiment: starts the streaming VAD server on a free loopback port, then
 * connects `streams` clients that each send the speech clip one 32 ms frame at a time, the next
 * frame as soon as the previous one is answered (a closed loop: as fast as the server answers).
 * Runs once without batching (one model call per frame) and once with every stream's frames
 * batched through one `Batcher`, and reports throughput and per-frame latency for both.
 *
 * @example
 * ```ts
 * const [unbatched, batched] = await runVadDemo({ streams: 64, durationMs: 4000 });
 * console.log(formatDemoTable([unbatched, batched]));
 * ```
 */
export async function runVadDemo(options: VadDemoOptions = {}): Promise<DemoResult[]> {
  const vad = options.vad ?? (await loadSileroVad());
  try {
    await warmUp(vad, options.maxBatchSize ?? 64);
    const results: DemoResult[] = [];
    for (const batching of [false, true]) results.push(await runMode(vad, batching, options));
    return results;
  } finally {
    if (options.vad === undefined) await vad.close();
  }
}

async function runMode(vad: SileroVad, batching: boolean, options: VadDemoOptions): Promise<DemoResult> {
  const label = batching ? 'with rx-batcher' : 'without batching';
  const server = await startVadServer({ batching, vad, maxBatchSize: options.maxBatchSize ?? 64, maxDelayMs: options.maxDelayMs ?? 2 });
  try {
    const streamsOptions = {
      streams: options.streams ?? 64,
      durationMs: options.durationMs ?? (options.framesPerStream === undefined ? 4000 : Infinity),
      framesPerStream: options.framesPerStream,
      onProgress: (frames: number, elapsedMs: number) => options.onProgress?.(label, frames, elapsedMs),
    };
    const before = server.stats();
    const { latencies, seconds } = (options.clientsInWorker ?? true) ? await runStreamsInWorker(server.url, streamsOptions) : await runStreams(server.url, streamsOptions);
    const after = server.stats();
    const framesPerSecond = latencies.length / seconds;
    const calls = after.modelCalls - before.modelCalls;
    return {
      label,
      batching,
      frames: latencies.length,
      seconds,
      framesPerSecond,
      realtimeStreams: Math.floor(framesPerSecond / FRAMES_PER_SECOND),
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      meanBatchSize: calls === 0 ? 0 : (after.frames - before.frames) / calls,
    };
  } finally {
    await server.close();
  }
}

/** A few runs at both batch sizes first, so neither mode pays onnxruntime's first-run costs. */
async function warmUp(vad: SileroVad, batchSize: number): Promise<void> {
  const frame = { samples: new Float32Array(INPUT_SAMPLES), state: initialSileroState() };
  for (let i = 0; i < 5; i++) {
    await vad.runOne(frame);
    await vad.runBatch(Array.from({ length: batchSize }, () => frame));
  }
}

function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Formats demo results as an aligned text table.
 *
 * @example
 * ```ts
 * console.log(formatDemoTable(await runVadDemo()));
 * ```
 */
export function formatDemoTable(results: readonly DemoResult[]): string {
  const rows = [
    ['mode', 'frames/s', 'real-time streams', 'p50 ms', 'p99 ms', 'mean batch'],
    ...results.map((r) => [r.label, r.framesPerSecond.toFixed(0), String(r.realtimeStreams), r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), r.meanBatchSize.toFixed(1)]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

/**
 * What the overload part of the demo saw.
 *
 * @example
 * ```ts
 * console.log(`${result.kept} of ${result.streams} streams kept in real time`);
 * ```
 */
export interface OverloadResult {
  readonly streams: number;
  /** Streams served to the end. */
  readonly kept: number;
  /** Streams told `overloaded` and closed with 1013 ("try again later"). */
  readonly told: number;
  /** When the told streams were told, in ms from their first frame: median (NaN when none was). */
  readonly toldAfterMs: number;
  /** Whether the streams told were the newest ones (the last to connect). */
  readonly toldNewest: boolean;
  /** Per frame of the kept streams, from sending it to its probability. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The server's limit: how far behind real time a stream may fall. */
  readonly maxLagMs: number;
}

/**
 * Options of {@link runOverloadDemo}.
 *
 * @example
 * ```ts
 * await runOverloadDemo({ streams: 80, durationMs: 4000 });
 * ```
 */
export interface OverloadDemoOptions {
  /** Live streams, more than the server can score in real time. */
  readonly streams: number;
  /** How long each stream sends. @default 4000 */
  readonly durationMs?: number;
  /** The server's `maxLagMs`. @default 1000 */
  readonly maxLagMs?: number;
  /** @default 64 */
  readonly maxBatchSize?: number;
  /** @default 2 */
  readonly maxDelayMs?: number;
  /** Called about every 250 ms, and once when it ends, with the frames answered so far. */
  readonly onProgress?: (frames: number, elapsedMs: number) => void;
  /** Run the clients in a worker thread. @default true */
  readonly clientsInWorker?: boolean;
  /** A loaded model to use (not closed); by default the demo loads and closes one. */
  readonly vad?: SileroVad;
}

/**
 * The demo's overload part: the batching server offered more live streams than it can score
 * in real time, each sending one 32 ms frame every 32 ms. The server ranks frames by their
 * stream's age, so the newest streams fall behind; once one is more than `maxLagMs` behind it
 * is told `overloaded` and closed (1013), and the streams kept stay in real time.
 *
 * @example
 * ```ts
 * const [, batched] = await runVadDemo();
 * console.log(formatOverload(await runOverloadDemo({ streams: 2 * batched.realtimeStreams })));
 * ```
 */
export async function runOverloadDemo(options: OverloadDemoOptions): Promise<OverloadResult> {
  const vad = options.vad ?? (await loadSileroVad());
  const maxLagMs = options.maxLagMs ?? 1000;
  try {
    const server = await startVadServer({ vad, maxLagMs, maxBatchSize: options.maxBatchSize ?? 64, maxDelayMs: options.maxDelayMs ?? 2 });
    let report: LiveReport;
    try {
      const streamsOptions = { streams: options.streams, durationMs: options.durationMs ?? 4000, onProgress: options.onProgress };
      report = (options.clientsInWorker ?? true) ? await runLiveStreamsInWorker(server.url, streamsOptions) : await runLiveStreams(server.url, streamsOptions);
    } finally {
      await server.close();
    }
    return {
      streams: report.streams,
      kept: report.kept,
      told: report.toldAfterMs.length,
      toldAfterMs: percentile(report.toldAfterMs, 0.5),
      toldNewest: report.toldStreams.every((stream, i) => stream === report.streams - report.toldStreams.length + i),
      p50Ms: percentile(report.latencies, 0.5),
      p99Ms: percentile(report.latencies, 0.99),
      maxLagMs,
    };
  } finally {
    if (options.vad === undefined) await vad.close();
  }
}

/**
 * Formats the overload part's result as a few lines.
 *
 * @example
 * ```ts
 * console.log(formatOverload(await runOverloadDemo({ streams: 80 })));
 * ```
 */
export function formatOverload(result: OverloadResult): string {
  const which = result.told === result.streams ? 'all' : result.toldNewest ? 'the newest' : 'not only the newest';
  const told = result.told === 0 ? 'none' : `${result.told} streams (${which}), after ${(result.toldAfterMs / 1000).toFixed(1)} s (median)`;
  const kept = result.kept === 0 ? 'none' : `${result.kept} streams, frame latency p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms`;
  return [
    `  kept in real time:  ${kept}`,
    `  told "overloaded":  ${told}, WebSocket close 1013 "try again later"`,
  ].join('\n');
}
