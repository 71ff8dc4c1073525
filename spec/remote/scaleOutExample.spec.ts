/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { runScaleOut } from '../../examples/scale-out/scaleOut';
import { startRedis, type TestBroker } from './brokers';

// The recipe "Scale out with Redis Streams" for real: two Silero VAD worker processes behind one
// remoteBatcher, on a private redis-server; every probability must equal one-at-a-time scoring.
describe('examples/scale-out (Silero VAD on two worker processes)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startRedis();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('scores concurrent audio streams on two workers exactly as one-at-a-time scoring does', async () => {
    const report = await runScaleOut({ url: broker.url, workers: 2, streams: 4, subject: `vad-${process.pid}` });
    expect(report.frames).toBeGreaterThan(400);
    expect(report.maxDifference).toBeLessThan(1e-4);
    expect(report.speechFrames).toBeGreaterThan(50); // the clip's sentence is found
    expect(report.workers).toHaveLength(2);
    expect(report.workers.reduce((a, w) => a + w.frames, 0)).toBe(report.frames);
    for (const w of report.workers) expect(w.frames).toBeGreaterThan(0);
    expect(Math.max(...report.workers.map((w) => w.meanBatchSize))).toBeGreaterThan(1); // frames of different streams share model calls
  }, 60_000);
});
