/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { formatDemoTable, runVadDemo } from '../../examples/demo/vadDemo';
import { loadSileroVad, type SileroVad } from '../../examples/models';

// Runs the `npm run demo` experiment for real (model, WebSocket server, clients in a worker
// thread), with few streams and a short clock.
describe('examples/demo (npm run demo)', () => {
  let vad: SileroVad;
  beforeAll(async () => {
    vad = await loadSileroVad();
  });
  afterAll(() => vad.close());

  it('streams frames to the VAD server with and without batching and reports both', async () => {
    const progress = new Set<string>();
    const results = await runVadDemo({ vad, streams: 8, durationMs: 400, onProgress: (label) => progress.add(label) });
    const [unbatched, batched] = results;
    expect(unbatched).toMatchObject({ label: 'without batching', batching: false, meanBatchSize: 1 });
    expect(batched).toMatchObject({ label: 'with rx-batcher', batching: true });
    for (const result of results) {
      expect(result.frames).toBeGreaterThanOrEqual(8);
      expect(result.framesPerSecond).toBeCloseTo(result.frames / result.seconds, 6);
      expect(result.realtimeStreams).toBe(Math.floor(result.framesPerSecond / 31.25));
      expect(result.p50Ms).toBeGreaterThan(0);
      expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    }
    // 8 streams with one frame in flight each: batches of up to 8 frames form.
    expect(batched.meanBatchSize).toBeGreaterThan(1.5);
    expect(batched.meanBatchSize).toBeLessThanOrEqual(8);
    expect([...progress]).toEqual(['without batching', 'with rx-batcher']);
    const table = formatDemoTable(results).split('\n');
    expect(table).toHaveLength(3);
    expect(table[0]).toMatch(/frames\/s +real-time streams +p50 ms +p99 ms +mean batch/);
  });

  it('can run its clients in the same thread too', async () => {
    const [unbatched, batched] = await runVadDemo({ vad, streams: 4, durationMs: 150, clientsInWorker: false });
    expect(unbatched.frames).toBeGreaterThanOrEqual(4);
    expect(batched.meanBatchSize).toBeGreaterThan(1);
  });
});
