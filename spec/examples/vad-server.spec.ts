/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import WebSocket from 'ws';
import { FRAME_SAMPLES, loadSileroVad, scoreSequentially, type SileroVad } from '../../examples/models';
import { loadSpeechClip } from '../../examples/speech/clip';
import { encodeWav, readWav } from '../../examples/speech/wav';
import { SpeechDetector, StreamShedder, VadClient, VadStream, startVadServer, streamAudio, type VadMessage, type SpeechEvent } from '../../examples/vad-server';
import type { SileroFrame } from '../../examples/models';
import { deferred, waitFor } from './helpers-wait';

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

/**
 * For the tests that run on the real clock and are not about falling behind: on a loaded
 * 2-core machine a stream can be a second behind real time, and the server would tell it
 * `overloaded` (the lag tests run on a clock of their own).
 */
const NOT_ABOUT_LAG = 60_000;

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

describe('examples/vad-server: lag and shedding, in memory on a test clock', () => {
  it('a frame is due when it arrives or 32 ms after the one before: a file sent at once is not behind while it is scored faster than real time', async () => {
    let clock = 0;
    const answers: Array<() => void> = [];
    const score = () => new Promise<{ probability: number; state: Float32Array }>((resolve) => answers.push(() => resolve({ probability: 0, state: new Float32Array(256) })));
    const file = new VadStream(score, () => {}, { now: () => clock, maxLagMs: 1000 });
    file.push(new Float32Array(40 * FRAME_SAMPLES)); // 1.28 s of audio at once: due at 0, 32, …, 1248 ms
    expect(file.lagMs).toBe(0);
    for (let i = 0; i < 10; i++) {
      clock += 10; // each frame scored in 10 ms: faster than real time
      answers.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(file.framesScored).toBe(10);
    expect(file.lagMs).toBe(100 - 320); // frame 10 is due at 320 ms: ahead of real time
    expect(file.pendingFrames).toBe(30);

    const live = new VadStream(score, () => {}, { now: () => clock, maxLagMs: 1000 });
    live.push(new Float32Array(FRAME_SAMPLES)); // due now
    clock += 250;
    expect(live.lagMs).toBe(250);
    file.close();
    live.close();
    expect([file.lagMs, live.lagMs, live.pendingFrames]).toEqual([0, 0, 0]);
  });

  it('StreamShedder: once a stream is half its limit behind while more arrives than is scored, the newest go, keeping as many as the scored frames feed', () => {
    let clock = 0;
    const shedder = new StreamShedder<{ name: string; lagMs: number; isOpen: boolean }>({ maxLagMs: 1000, now: () => clock });
    const streams = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, lagMs: 0, isOpen: true }));
    streams.forEach((stream) => shedder.add(stream));
    const window = (arrived: number, scored: number) => {
      shedder.arrived(arrived);
      shedder.scored(scored);
      clock += 250;
      return shedder.check().map((stream) => stream.name);
    };
    // Scored 2 streams' worth (62.5 frames/s), 5 arriving (156.25/s), but nobody behind yet: nothing.
    expect(window(39.0625, 15.625)).toEqual([]);
    streams[0].lagMs = 600; // the oldest is over half the limit behind
    expect(window(39.0625, 15.625)).toEqual(['e', 'd', 'c']); // newest first; 'a' and 'b' are fed
    expect(shedder.refusing).toBe(true);
    ['e', 'd', 'c'].forEach((name) => shedder.remove(streams.find((s) => s.name === name)!));
    // Catching up (scoring more than arrives): nothing more goes, though 'a' is still behind.
    expect(window(15.625, 20)).toEqual([]);
    // Still behind and falling further (a quarter of the limit after the last time): at least one
    // more goes. 'b' has ended: an ended stream is neither counted nor let go, so it is 'a'.
    streams[1].isOpen = false;
    expect(window(20, 5)).toEqual(['a']);
    clock += 1000;
    expect(shedder.refusing).toBe(false);
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
    const server = await startVadServer({ port: 0, batching: true, vad, maxBatchSize: chunkSizes.length, maxDelayMs: 60_000, maxLagMs: NOT_ABOUT_LAG });
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
    const server = await startVadServer({ batching: false, vad, maxLagMs: NOT_ABOUT_LAG });
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
    const server = await startVadServer({ vad, maxPendingFrames: 50, maxLagMs: NOT_ABOUT_LAG });
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
  /** The real model behind a gate: it records the frames it is given and holds them until `release()`. */
  function gated(model: SileroVad) {
    const seen: SileroFrame[] = [];
    const gate = deferred<void>();
    const vadOf: SileroVad = {
      ...model,
      runBatch: async (frames) => {
        seen.push(...frames);
        await gate.promise;
        return model.runBatch(frames);
      },
    };
    return { vad: vadOf, seen, release: () => gate.resolve() };
  }

  it('tells a stream that falls more than maxLagMs behind real time (overloaded, close 1013) instead of letting its delay grow', async () => {
    // The model is held and the clock is the test's: lag is exact, whatever the machine does.
    let clock = 0;
    const model = gated(vad);
    const server = await startVadServer({ vad: model.vad, maxLagMs: 1000, maxDelayMs: 0, now: () => clock });
    try {
      const live = await VadClient.connect(server.url);
      const told: VadMessage[] = [];
      live.onMessage((message) => told.push(message));
      live.send(clip.samples.subarray(0, 3 * FRAME_SAMPLES)); // due at 0, 32 and 64 ms
      await waitFor(() => model.seen.length === 1, 'its first frame to reach the model');
      // Its next frame arrives when its oldest unscored frame has been due for 1100 ms.
      clock = 1100;
      live.send(clip.samples.subarray(3 * FRAME_SAMPLES, 4 * FRAME_SAMPLES));
      expect(await live.closed).toBe(1013);
      expect(told).toEqual([{ type: 'overloaded', lagMs: 1100, message: 'the server cannot score this stream in real time: it is 1100 ms behind (limit 1000 ms); try again later' }]);
      expect(live.overloaded).toEqual(told[0]);
      expect(server.stats()).toMatchObject({ overloaded: 1, pendingFrames: 0 });
    } finally {
      model.release();
      await server.close();
    }
  });

  it('when streams fall behind while frames arrive faster than they are scored, lets the newest go at once and turns new ones away for a while', async () => {
    // The model scores nothing (held), so it feeds no stream live: every stream goes, newest first.
    let clock = 0;
    const model = gated(vad);
    const server = await startVadServer({ vad: model.vad, maxLagMs: 1000, maxDelayMs: 0, now: () => clock });
    try {
      const [older, newer] = [await VadClient.connect(server.url), await VadClient.connect(server.url)];
      const told: Array<[string, VadMessage]> = [];
      older.onMessage((message) => told.push(['older', message]));
      newer.onMessage((message) => told.push(['newer', message]));
      older.send(clip.samples.subarray(0, FRAME_SAMPLES));
      newer.send(clip.samples.subarray(0, FRAME_SAMPLES));
      await waitFor(() => server.stats().pendingFrames === 2, 'both frames to arrive');
      // 600 ms later (over half the limit behind, with frames arriving and none scored), more audio.
      clock = 600;
      older.send(clip.samples.subarray(FRAME_SAMPLES, 2 * FRAME_SAMPLES));
      expect(await Promise.all([newer.closed, older.closed])).toEqual([1013, 1013]);
      const letGo = (lagMs: number) => ({ type: 'overloaded', lagMs, message: `the server cannot keep every stream in real time and lets the newest go (this one was ${lagMs} ms behind); try again later` });
      // (Which is told first is the shedder's spec below: two sockets do not keep an order.)
      expect(told).toHaveLength(2);
      expect(told).toEqual(expect.arrayContaining([['newer', letGo(600)], ['older', letGo(600)]]));

      // Within the next maxLagMs a new stream is turned away as it connects.
      clock = 1500;
      const late = await VadClient.connect(server.url);
      expect(await late.closed).toBe(1013);
      expect(late.overloaded).toEqual({ type: 'overloaded', lagMs: 0, message: 'the server cannot take another live stream now; try again later' });
      expect(server.stats().overloaded).toBe(3);

      clock = 1700; // past it: streams are welcome again
      model.release();
      const back = await VadClient.connect(server.url);
      back.send(clip.samples.subarray(0, 2 * FRAME_SAMPLES));
      expect(await back.end()).toEqual({ type: 'done', frames: 2 });
      await back.close();
    } finally {
      model.release();
      await server.close();
    }
  });

  it('serves older streams first, so under overload the newest fall behind and are the ones told', async () => {
    const model = gated(vad);
    const server = await startVadServer({ vad: model.vad, maxBatchSize: 1, maxDelayMs: 0, maxLagMs: NOT_ABOUT_LAG });
    try {
      const [first, second, third] = [await VadClient.connect(server.url), await VadClient.connect(server.url), await VadClient.connect(server.url)];
      const frame = (value: number) => new Float32Array(FRAME_SAMPLES).fill(value);
      first.send(frame(0.1));
      await waitFor(() => model.seen.length === 1, 'the first stream to take the model');
      // The third stream's frame arrives before the second's, and still waits for it.
      third.send(frame(0.3));
      await waitFor(() => server.stats().pendingFrames === 2, "the third stream's frame to queue");
      second.send(frame(0.2));
      await waitFor(() => server.stats().pendingFrames === 3, "the second stream's frame to queue");
      model.release();
      await Promise.all([first, second, third].map((client) => client.end()));
      // The model's input holds 64 samples of context, then the frame: sample 100 is the frame's.
      expect(model.seen.map((f) => Math.round(f.samples[100] * 10) / 10)).toEqual([0.1, 0.2, 0.3]);
      await Promise.all([first, second, third].map((client) => client.close()));
    } finally {
      model.release();
      await server.close();
    }
  });
});
