/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { formatDemoTable, formatOverload, runOverloadDemo, runVadDemo } from '../../examples/demo/vadDemo';
import { FRAMES_PER_SECOND, loadSileroVad, type SileroVad } from '../../examples/models';

// Runs the `npm run demo` experiment for real (model, WebSocket server, clients in a worker
// thread), with few streams and a fixed number of frames per stream instead of a clock. Each
// stream has one frame in flight; with batches of `streams` frames and a window longer than the
// test, a batch goes only when it holds the next frame of every stream. So the counts and batch
// sizes are exact, however fast the machine is; the speeds in the table are only reported.
describe('examples/demo (npm run demo)', () => {
  let vad: SileroVad;
  beforeAll(async () => {
    vad = await loadSileroVad();
  });
  afterAll(() => vad.close());

  it('streams frames to the VAD server with and without batching and reports both', async () => {
    const streams = 8;
    const framesPerStream = 12;
    const progress = new Set<string>();
    const results = await runVadDemo({
      vad,
      streams,
      framesPerStream,
      maxBatchSize: streams,
      maxDelayMs: 60_000,
      onProgress: (label) => progress.add(label),
    });
    const [unbatched, batched] = results;
    expect(unbatched).toMatchObject({ label: 'without batching', batching: false, frames: streams * framesPerStream, meanBatchSize: 1 });
    // Frame k of all 8 streams went through the model in one call.
    expect(batched).toMatchObject({ label: 'with rx-batcher', batching: true, frames: streams * framesPerStream, meanBatchSize: streams });
    for (const result of results) {
      expect(result.seconds).toBeGreaterThan(0);
      expect(result.framesPerSecond).toBeCloseTo(result.frames / result.seconds, 6);
      expect(result.realtimeStreams).toBe(Math.floor(result.framesPerSecond / FRAMES_PER_SECOND));
      expect(result.p50Ms).toBeGreaterThan(0);
      expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    }
    expect([...progress]).toEqual(['without batching', 'with rx-batcher']); // each mode reports at least once, at its end
    const table = formatDemoTable(results).split('\n');
    expect(table).toHaveLength(3);
    expect(table[0]).toMatch(/frames\/s +real-time streams +p50 ms +p99 ms +mean batch/);
    expect(table[2]).toMatch(/^with rx-batcher .* 8\.0$/);
  });

  it('can run its clients in the same thread too', async () => {
    const [unbatched, batched] = await runVadDemo({ vad, streams: 4, framesPerStream: 5, maxBatchSize: 4, maxDelayMs: 60_000, clientsInWorker: false });
    expect(unbatched).toMatchObject({ frames: 20, meanBatchSize: 1 });
    expect(batched).toMatchObject({ frames: 20, meanBatchSize: 4 });
  });
  it('overload part: live streams a model cannot serve are told to try again later, and none is left waiting', async () => {
    // A model that never answers serves no stream: every live stream must be told (overloaded,
    // close 1013), whenever that happens; the counts do not depend on the machine's speed.
    const silent: SileroVad = { ...vad, runBatch: () => new Promise(() => {}) };
    const result = await runOverloadDemo({ vad: silent, streams: 6, durationMs: 400, maxLagMs: 100 });
    expect(result).toMatchObject({ streams: 6, kept: 0, told: 6, toldNewest: true, maxLagMs: 100 });
    expect(result.toldAfterMs).toBeGreaterThan(0);
    expect(formatOverload(result).split('\n')).toEqual([
      '  kept in real time:  none',
      expect.stringMatching(/^  told "overloaded":  6 streams \(all\), after \d+\.\d s \(median\), WebSocket close 1013 "try again later"$/),
    ]);
  });
});
