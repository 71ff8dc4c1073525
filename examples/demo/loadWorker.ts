/**
 * Worker-thread entry of the demo's load generator: runs {@link runStreams} with the options in
 * `workerData` and posts progress and the final report to the parent. Started by
 * {@link runStreamsInWorker}, so the simulated clients do not share the server's event loop.
 */
import { parentPort, workerData, Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { runStreams, type LoadReport, type StreamsOptions } from './loadGenerator';

type WorkerMessage =
  | { readonly type: 'progress'; readonly frames: number; readonly elapsedMs: number }
  | { readonly type: 'done'; readonly latencies: Float64Array; readonly seconds: number };

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
  // The worker loads TypeScript through tsx's CommonJS hook (or plain JS once compiled).
  const entry = join(__dirname, `loadWorker${__filename.endsWith('.ts') ? '.ts' : '.js'}`);
  const source = `${__filename.endsWith('.ts') ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});` : ''} require(${JSON.stringify(entry)});`;
  const worker = new Worker(source, { eval: true, workerData: { url, streams: options.streams, durationMs: options.durationMs, framesPerStream: options.framesPerStream } });
  return new Promise<LoadReport>((resolve, reject) => {
    let report: LoadReport | undefined;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') options.onProgress?.(message.frames, message.elapsedMs);
      else report = { latencies: message.latencies, seconds: message.seconds };
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (report && code === 0 ? resolve(report) : reject(new Error(`the load generator worker exited with code ${code} before reporting`))));
  });
}

if (parentPort !== null && (workerData as { url?: unknown } | null)?.url !== undefined) {
  const port = parentPort;
  const { url, streams, durationMs, framesPerStream } = workerData as { url: string } & StreamsOptions;
  runStreams(url, { streams, durationMs, framesPerStream, onProgress: (frames, elapsedMs) => port.postMessage({ type: 'progress', frames, elapsedMs } satisfies WorkerMessage) }).then(
    (report) => port.postMessage({ type: 'done', latencies: report.latencies, seconds: report.seconds } satisfies WorkerMessage, [report.latencies.buffer as ArrayBuffer]),
    (error: unknown) => {
      throw error;
    },
  );
}
