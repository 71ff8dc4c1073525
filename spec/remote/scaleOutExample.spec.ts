/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { runScaleOut } from '../../examples/scale-out/scaleOut';
import { startRedis, type TestBroker } from './brokers';

// The recipe "Scale out with Redis Streams" for real: the streaming VAD server as a front end,
// two Silero VAD worker processes behind its remoteBatcher, a private redis-server; every
// probability must equal one-at-a-time scoring.
describe('examples/scale-out (the VAD server on two Silero VAD worker processes)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startRedis();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('serves concurrent WebSocket audio streams from two workers exactly as one-at-a-time scoring does', async () => {
    const report = await runScaleOut({ url: broker.url, workers: 2, streams: 4, subject: `vad-${process.pid}` });
    expect(report.frames).toBeGreaterThan(400);
    expect(report.maxDifference).toBeLessThan(1e-4);
    // The clip's sentence is found: events alternate start/end and lie around the speech.
    expect(report.events.length).toBeGreaterThanOrEqual(2);
    report.events.forEach((e, i) => expect(e.type).toBe(i % 2 === 0 ? 'speech-start' : 'speech-end'));
    expect(report.events[0].sample).toBeGreaterThanOrEqual(report.speech.start - 512);
    expect(report.events[report.events.length - 1].sample).toBeLessThanOrEqual(report.speech.end + 3 * 512);
    expect(report.workers).toHaveLength(2);
    expect(report.workers.reduce((a, w) => a + w.frames, 0)).toBe(report.frames);
    for (const w of report.workers) expect(w.frames).toBeGreaterThan(0);
    expect(Math.max(...report.workers.map((w) => w.meanBatchSize))).toBeGreaterThan(1); // frames of different streams share model calls
  }, 60_000);
});
