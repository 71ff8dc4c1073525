// The thread of loadSileroVadInThread(): loads Silero VAD here and runs each batch it is sent.
// The examples are TypeScript; tsx's require hook lets this thread load them as they are.
require('tsx/cjs/api').register();
const { parentPort, workerData } = require('node:worker_threads');
const { loadSileroVad } = require('./sileroVad.ts');

loadSileroVad({ modelPath: workerData.modelPath }).then(
  (vad) => {
    parentPort.on('message', ({ id, frames }) => {
      vad.runBatch(frames).then(
        (results) => parentPort.postMessage({ id, results }, results.map((r) => r.state.buffer)),
        (error) => parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) }),
      );
    });
    parentPort.postMessage({ type: 'ready' });
  },
  (error) => parentPort.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) }),
);
