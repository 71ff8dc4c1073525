import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SileroFrame, SileroResult, SileroVad } from './sileroVad';

/**
 * Silero VAD in a worker thread: the same {@link SileroVad} as `loadSileroVad()`, but each
 * batch runs on a thread of its own instead of the event loop. onnxruntime-node's `run`
 * holds the calling thread for the whole batch (5–20 ms for 64 frames here), so in a server
 * every request waits behind it, however cheap its own work; with the model on another
 * thread the event loop keeps reading, refusing and answering requests while a batch runs.
 * Frames are copied to the thread and results copied back (about 0.2 MB per batch of 64).
 *
 * Batches are run one at a time, in the order they were sent (the model's own thread is the
 * only one it uses), so `maxConcurrentBatches: 1` suits it.
 *
 * @example
 * ```ts
 * const vad = await loadSileroVadInThread();
 * const batcher = new Batcher({ runBatch: vad.runBatch, maxBatchSize: 64, maxDelayMs: 2 });
 * // …
 * await vad.close(); // ends the thread
 * ```
 */
export async function loadSileroVadInThread(options: { readonly modelPath?: string } = {}): Promise<SileroVad> {
  const worker = new Worker(join(__dirname, 'sileroVadWorker.cjs'), { workerData: { modelPath: options.modelPath } });
  const waiting = new Map<number, { resolve: (results: SileroResult[]) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  let calls = 0;
  let framesRun = 0;
  let failure: Error | undefined;

  const failAll = (error: Error): void => {
    failure ??= error;
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the Silero VAD thread exited (code ${code})`)));
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (message: { type: string; message?: string }) => {
      if (message.type === 'ready') resolve();
      else reject(new Error(`the Silero VAD thread could not load the model: ${message.message}`));
    });
    worker.once('error', reject);
  });
  worker.on('message', (message: { id: number; results?: SileroResult[]; error?: string }) => {
    const call = waiting.get(message.id);
    if (call === undefined) return;
    waiting.delete(message.id);
    if (message.results !== undefined) {
      calls++;
      framesRun += message.results.length;
      call.resolve(message.results);
    } else {
      call.reject(new Error(message.error));
    }
  });

  const runBatch = (frames: readonly SileroFrame[]): Promise<SileroResult[]> => {
    if (failure !== undefined) return Promise.reject(failure);
    if (frames.length === 0) return Promise.resolve([]);
    const id = nextId++;
    return new Promise<SileroResult[]>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, frames: frames.map(({ samples, state }) => ({ samples, state })) });
    });
  };

  return {
    runBatch,
    runOne: async (frame) => (await runBatch([frame]))[0],
    counts: () => ({ calls, frames: framesRun }),
    close: async () => {
      worker.removeAllListeners('exit');
      failAll(new Error('the Silero VAD thread was closed'));
      await worker.terminate();
    },
  };
}
