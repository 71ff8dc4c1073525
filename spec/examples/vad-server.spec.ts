/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import WebSocket from 'ws';
import { FRAME_SAMPLES, loadSileroVad, scoreSequentially, type SileroVad } from '../../examples/models';
import { loadSpeechClip } from '../../examples/speech/clip';
import { encodeWav, readWav } from '../../examples/speech/wav';
import { SpeechDetector, VadClient, startVadServer, streamAudio, type VadMessage, type SpeechEvent } from '../../examples/vad-server';

const clip = loadSpeechClip();

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  expect(a).toHaveLength(b.length);
  return a.reduce((max, x, i) => Math.max(max, Math.abs(x - b[i])), 0);
}

function expectEventsInSpeech(events: readonly SpeechEvent[]): void {
  expect(events.length).toBeGreaterThanOrEqual(2);
  events.forEach((event, i) => expect(event.type).toBe(i % 2 === 0 ? 'speech-start' : 'speech-end'));
  for (const event of events) {
    expect(event.sample).toBeGreaterThanOrEqual(clip.speechStart - FRAME_SAMPLES);
    expect(event.sample).toBeLessThanOrEqual(clip.speechEnd + 3 * FRAME_SAMPLES); // the model hears a frame or two of echo
    expect(event.time).toBeCloseTo(event.sample / 16_000, 6);
  }
  // Speech is found within 0.2 s of where it begins and ends.
  expect(events[0].sample).toBeLessThan(clip.speechStart + 0.2 * 16_000);
  expect(events[events.length - 1].sample).toBeGreaterThan(clip.speechEnd - 0.2 * 16_000);
}

describe('examples/speech: the committed clip', () => {
  it('is 16 kHz speech with a second of silence on each side, and survives a WAV round trip', () => {
    expect(clip.sampleRate).toBe(16_000);
    const peak = (from: number, to: number) => clip.samples.subarray(from, to).reduce((m, s) => Math.max(m, Math.abs(s)), 0);
    expect(peak(0, clip.speechStart)).toBe(0);
    expect(peak(clip.speechEnd, clip.samples.length)).toBe(0);
    expect(peak(clip.speechStart, clip.speechEnd)).toBeGreaterThan(0.2);
    const again = readWav(encodeWav(clip.samples, 16_000));
    expect(maxAbsDiff(Array.from(again.samples), Array.from(clip.samples))).toBeLessThan(1e-4);
  });
});

describe('examples/vad-server: SpeechDetector', () => {
  it('starts on a loud frame, ignores a short pause, and ends after enough silence where the silence began', () => {
    const detector = new SpeechDetector({ threshold: 0.5, endThreshold: 0.35, minSilenceMs: 90 }); // 3 frames
    const pushed = [0.1, 0.9, 0.4, 0.2, 0.9, 0.1, 0.1, 0.1, 0.1].flatMap((p) => detector.push(p));
    expect(pushed.map((e) => [e.type, e.sample / FRAME_SAMPLES])).toEqual([
      ['speech-start', 1],
      ['speech-end', 5],
    ]);
    expect(detector.push(0.7).map((e) => e.type)).toEqual(['speech-start']);
    expect(detector.finish().map((e) => [e.type, e.sample / FRAME_SAMPLES])).toEqual([['speech-end', 10]]);
  });
});

describe('examples/vad-server: streaming real speech over WebSocket', () => {
  let vad: SileroVad;
  let reference: number[];
  beforeAll(async () => {
    vad = await loadSileroVad();
    reference = await scoreSequentially(vad, clip.samples);
  });
  afterAll(() => vad.close());

  it('batches frames of several concurrent streams and finds the speech in each, with the unbatched probabilities', async () => {
    // Each stream has one frame in flight. With batches of 4 and a window longer than the test,
    // a batch goes only when every stream's next frame is in it: frame k of all four streams
    // share one model call, however fast or slow their audio arrives.
    const chunkSizes = [1600, 512, 3000, 777];
    const server = await startVadServer({ port: 0, batching: true, vad, maxBatchSize: chunkSizes.length, maxDelayMs: 60_000 });
    try {
      expect(server.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      const results = await Promise.all(chunkSizes.map((chunkSamples) => streamAudio(server.url, clip.samples, { chunkSamples, probabilities: true })));
      const detector = new SpeechDetector();
      const expectedEvents = [...reference.flatMap((p) => detector.push(p)), ...detector.finish()];
      for (const result of results) {
        expect(result.frames).toBe(Math.floor(clip.samples.length / FRAME_SAMPLES));
        expect(maxAbsDiff(result.probabilities, reference)).toBeLessThan(1e-4);
        expectEventsInSpeech(result.events);
        expect(result.events).toEqual(expectedEvents);
      }
      const stats = server.stats();
      expect(stats.frames).toBe(chunkSizes.length * reference.length);
      expect(stats.modelCalls).toBe(reference.length); // one call per frame position, for all four streams
      expect(stats.meanBatchSize).toBe(chunkSizes.length);
    } finally {
      await server.close();
    }
  });

  it('gives the same answers without batching, one model call per frame', async () => {
    const server = await startVadServer({ batching: false, vad });
    try {
      const [a, b] = await Promise.all([streamAudio(server.url, clip.samples, { probabilities: true }), streamAudio(server.url, clip.samples)]);
      expect(maxAbsDiff(a.probabilities, reference)).toBeLessThan(1e-4);
      expect(b.probabilities).toEqual([]); // not asked for
      expectEventsInSpeech(a.events);
      expect(b.events).toEqual(a.events);
      expect(server.stats().meanBatchSize).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('answers a bad message or a flood with an error and closes that stream only; close() scores what streams already sent, then ends them', async () => {
    const server = await startVadServer({ vad, maxPendingFrames: 50 });
    const healthy = await VadClient.connect(server.url);
    try {
      const socket = new WebSocket(server.url);
      const messages: VadMessage[] = [];
      socket.on('message', (data) => messages.push(JSON.parse(String(data)) as VadMessage));
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send('hello');
      const code = await new Promise<number>((resolve) => socket.once('close', resolve));
      expect(code).toBe(1011);
      expect(messages).toEqual([{ type: 'error', message: expect.stringMatching(/binary 16-bit PCM/) }]);

      const flooding = await VadClient.connect(server.url);
      flooding.send(clip.samples.subarray(0, 60 * FRAME_SAMPLES));
      await expect(flooding.end()).rejects.toThrow(/more than 50 frames are waiting/);
      expect(await flooding.closed).toBe(1011);

      healthy.send(clip.samples.subarray(0, 4 * FRAME_SAMPLES));
      expect(await healthy.end()).toEqual({ type: 'done', frames: 4 });

      // A stream with audio still to score when the server shuts down gets all of it scored.
      const midway = await VadClient.connect(server.url, { probabilities: true });
      const received: VadMessage[] = [];
      midway.onMessage((message) => received.push(message));
      const firstFrame = new Promise((resolve) => midway.onMessage((message) => message.type === 'frame' && resolve(message)));
      midway.send(clip.samples.subarray(0, 20 * FRAME_SAMPLES));
      await firstFrame; // the server has the audio
      await server.close();
      expect(received.filter((m) => m.type === 'frame')).toHaveLength(20);
      expect(received[received.length - 1]).toEqual({ type: 'done', frames: 20 });
      expect(await midway.closed).toBe(1001); // going away
    } finally {
      await server.close();
    }
    expect(server.stats().connections).toBe(0);
    expect(await healthy.closed).toBe(1001);
  });
});
