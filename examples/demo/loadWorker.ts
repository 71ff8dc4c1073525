/**
 * Worker-thread entry of the demo's load generator: runs {@link runStreams} (or
 * {@link runLiveStreams}) with the options in `workerData` and posts progress and the final
 * report to the parent (typed arrays are copied: structured clone). Started by
 * {@link runStreamsInWorker} and {@link runLiveStreamsInWorker}, so the simulated clients do not
 * share the server's event loop.
 */
import { parentPort, workerData, Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { runLiveStreams, runStreams, type LiveReport, type LoadReport, type StreamsOptions } from './loadGenerator';

type WorkerMessage =
  | { readonly type: 'progress'; readonly frames: number; readonly elapsedMs: number }
  | { readonly type: 'done'; readonly report: LoadReport | LiveReport };

/** Which load the worker runs: {@link runStreams} (closed loop) or {@link runLiveStreams}. */
type Mode = 'closed' | 'live';

/**
 * Runs {@link runStreams} in a worker thread, so the clients' WebSocket and JSON work uses the
 * second CPU core instead of the server's thread (onnxruntime-node runs the model on the
 * calling thread). The worker exits when the streams are done.
 *
 * @example
 * ```ts
 * const report = await runStreamsInWorker(server.url, { streams: 64, durationMs: 4000 });
 * ```
 */
export function runStreamsInWorker(url: string, options: StreamsOptions): Promise<LoadReport> {
  return inWorker<LoadReport>('closed', url, options);
}

/**
 * Runs {@link runLiveStreams} in a worker thread, for the same reason as {@link runStreamsInWorker}.
 *
 * @example
 * ```ts
 * const report = await runLiveStreamsInWorker(server.url, { streams: 80, durationMs: 4000 });
 * ```
 */
export function runLiveStreamsInWorker(url: string, options: StreamsOptions): Promise<LiveReport> {
  return inWorker<LiveReport>('live', url, options);
}

function inWorker<R extends LoadReport | LiveReport>(mode: Mode, url: string, options: StreamsOptions): Promise<R> {
  // The worker loads TypeScript through tsx's CommonJS hook (or plain JS once compiled).
  const entry = join(__dirname, `loadWorker${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
  const source = `${__filename.endsWith('.ts') ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});` : ''} require(${JSON.stringify(entry)});`;
  const worker = new Worker(source, { eval: true, workerData: { mode, url, streams: options.streams, durationMs: options.durationMs, framesPerStream: options.framesPerStream } });
  return new Promise<R>((resolve, reject) => {
    let report: R | undefined;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') options.onProgress?.(message.frames, message.elapsedMs);
      else report = message.report as R;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (report && code === 0 ? resolve(report) : reject(new Error(`the load generator worker exited with code ${code} before reporting`))));
  });
}

if (parentPort !== null && (workerData as { url?: unknown } | null)?.url !== undefined) {
  const port = parentPort;
  const { mode, url, streams, durationMs, framesPerStream } = workerData as { mode: Mode; url: string } & StreamsOptions;
  const options: StreamsOptions = { streams, durationMs, framesPerStream, onProgress: (frames, elapsedMs) => port.postMessage({ type: 'progress', frames, elapsedMs } satisfies WorkerMessage) };
  (mode === 'live' ? runLiveStreams(url, options) : runStreams(url, options)).then(
    (report) => port.postMessage({ type: 'done', report } satisfies WorkerMessage),
    (error: unknown) => {
      throw error;
    },
  );
}
