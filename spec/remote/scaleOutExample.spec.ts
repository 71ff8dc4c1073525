/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { FRAME_SAMPLES } from '../../examples/models';
import { runScaleOut } from '../../examples/scale-out/scaleOut';
import { loadSpeechClip } from '../../examples/speech/clip';
import { startRedis, type TestBroker } from './brokers';

// The recipe "Scale out with Redis Streams" for real: the streaming VAD server as a front end,
// two Silero VAD worker processes behind its remoteBatcher, a private redis-server; every
// probability must equal one-at-a-time scoring. Only what is exact is checked: which worker
// pulls which frames, and how many are waiting when it pulls, depends on the two processes'
// timing (how the workers batch is tested deterministically in spec/remote/memory.spec.ts).
describe('examples/scale-out (the VAD server on two Silero VAD worker processes)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startRedis();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('serves concurrent WebSocket audio streams from two workers exactly as one-at-a-time scoring does', async () => {
    const streams = 4;
    // Not about lag: on a busy 2-core machine a stream can fall a second behind real time, and
    // the server would close it as overloaded (the lag rules have their own spec).
    const report = await runScaleOut({ url: broker.url, workers: 2, streams, subject: `vad-${process.pid}`, maxLagMs: 60_000 });
    // Every stream got a probability for every frame of the clip (runScaleOut throws otherwise),
    // each equal to one-at-a-time scoring.
    const clip = loadSpeechClip();
    expect(report.frames).toBe(streams * Math.floor(clip.samples.length / FRAME_SAMPLES));
    expect(report.maxDifference).toBeLessThan(1e-4);
    // The clip's sentence is found: events alternate start/end and lie around the speech.
    expect(report.events.length).toBeGreaterThanOrEqual(2);
    report.events.forEach((e, i) => expect(e.type).toBe(i % 2 === 0 ? 'speech-start' : 'speech-end'));
    expect(report.events[0].sample).toBeGreaterThanOrEqual(report.speech.start - 512);
    expect(report.events[report.events.length - 1].sample).toBeLessThanOrEqual(report.speech.end + 3 * 512);
    // Both workers ran and reported their stats; between them they scored each frame exactly once.
    expect(report.workers).toHaveLength(2);
    expect(new Set(report.workers.map((w) => w.pid)).size).toBe(2);
    expect(report.workers.reduce((a, w) => a + w.frames, 0)).toBe(report.frames);
    for (const w of report.workers) {
      expect(w.batches).toBeLessThanOrEqual(w.frames);
      expect(w.meanBatchSize * w.batches).toBeCloseTo(w.frames, 6);
    }
  }, 60_000);
});
