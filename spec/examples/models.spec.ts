/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FRAME_SAMPLES,
  INPUT_SAMPLES,
  MLP_INPUTS,
  MLP_OUTPUTS,
  STATE_WIDTH,
  buildMlpModel,
  ensureMlpModel,
  framesOf,
  FrameCutter,
  gatherStates,
  initialSileroState,
  loadMlp,
  loadSileroVad,
  scatterStates,
  scoreSequentially,
  seededRandom,
  type Mlp,
  type SileroVad,
} from '../../examples/models';
import { loadSileroVadInThread } from '../../examples/models/sileroVadThread';

/** Deterministic test audio: noise whose loudness and pitch differ per stream. */
function syntheticAudio(stream: number, frames: number): Float32Array {
  const next = seededRandom(100 + stream);
  const audio = new Float32Array(frames * FRAME_SAMPLES);
  for (let i = 0; i < audio.length; i++) {
    audio[i] = 0.3 * Math.sin((2 * Math.PI * (150 + 40 * stream) * i) / 16_000) * (1 + Math.sin(i / 900)) + (next() - 0.5) * 0.05 * (stream + 1);
  }
  return audio;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

describe('examples/models: the state layout helpers', () => {
  it('gathers per-stream states into [2, B, 128] with the batch on the middle axis, and scatters them back', () => {
    const states = [0, 1, 2].map((b) => Float32Array.from({ length: 2 * STATE_WIDTH }, (_, i) => b * 1000 + i));
    const packed = gatherStates(states);
    // stream 1, layer 1, element 5 sits at (layer * B + b) * 128 + 5
    expect(packed[(1 * 3 + 1) * STATE_WIDTH + 5]).toBe(1000 + STATE_WIDTH + 5);
    expect(packed[(0 * 3 + 2) * STATE_WIDTH]).toBe(2000);
    expect(scatterStates(packed, 3)).toEqual(states);
    expect(() => gatherStates([new Float32Array(10)])).toThrow(/initialSileroState/);
  });

  it('cuts chunks of any size into 576-sample inputs that carry 64 samples of context', () => {
    const audio = Float32Array.from({ length: 3 * FRAME_SAMPLES + 100 }, (_, i) => i + 1);
    const cutter = new FrameCutter();
    const frames = [...cutter.push(audio.subarray(0, 700)), ...cutter.push(audio.subarray(700, 1100)), ...cutter.push(audio.subarray(1100))];
    expect(frames).toHaveLength(3);
    expect(frames.every((f) => f.length === INPUT_SAMPLES)).toBe(true);
    expect(frames[0][63]).toBe(0); // silence before the first frame
    expect(frames[0][64]).toBe(1);
    expect(frames[1][0]).toBe(FRAME_SAMPLES - 63); // the last 64 samples of frame 0
    expect(frames[2][INPUT_SAMPLES - 1]).toBe(3 * FRAME_SAMPLES);
    expect(framesOf(audio)).toEqual(frames);
  });
});

describe('examples/models: Silero VAD v6, run for real', () => {
  let vad: SileroVad;
  beforeAll(async () => {
    vad = await loadSileroVad();
  });
  afterAll(() => vad.close());

  it('gives the same probabilities and states batched across streams as one frame at a time, with state carried over frames', async () => {
    const streams = 5;
    const frameCount = 8;
    const audio = Array.from({ length: streams }, (_, s) => syntheticAudio(s, frameCount));
    const inputs = audio.map(framesOf);

    // Batched: at each step, one frame of every stream in one model call.
    let states = audio.map(() => initialSileroState());
    const batched: number[][] = audio.map(() => []);
    for (let step = 0; step < frameCount; step++) {
      const results = await vad.runBatch(inputs.map((frames, s) => ({ samples: frames[step], state: states[s] })));
      results.forEach((r, s) => batched[s].push(r.probability));
      states = results.map((r) => r.state);
    }

    // One at a time, stream by stream.
    let worst = 0;
    for (let s = 0; s < streams; s++) {
      const alone = await scoreSequentially(vad, audio[s]);
      worst = Math.max(worst, maxAbsDiff(batched[s], alone));
    }
    expect(worst).toBeLessThan(1e-4);
    // The state matters: scoring the last frame from a fresh state gives a different answer.
    const fresh = await vad.runOne({ samples: inputs[0][frameCount - 1], state: initialSileroState() });
    expect(Math.abs(fresh.probability - batched[0][frameCount - 1]) + maxAbsDiff(fresh.state, states[0])).toBeGreaterThan(0);
    expect(vad.counts().frames).toBe(streams * frameCount * 2 + 1);
    await expect(vad.runOne({ samples: new Float32Array(512), state: initialSileroState() })).rejects.toThrow(/576/);
  });
});

describe('examples/models: Silero VAD v6 on a worker thread, run for real', () => {
  it('answers exactly as the model on the event loop does, passes on its errors, and fails every call once closed', async () => {
    const [here, threaded] = await Promise.all([loadSileroVad(), loadSileroVadInThread()]);
    try {
      const audio = syntheticAudio(3, 6);
      const frames = framesOf(audio).map((samples) => ({ samples, state: initialSileroState() }));
      const [expected, got] = await Promise.all([here.runBatch(frames), threaded.runBatch(frames)]);
      expect(got.map((r) => r.probability)).toEqual(expected.map((r) => r.probability));
      expect(got.map((r) => Array.from(r.state))).toEqual(expected.map((r) => Array.from(r.state)));
      expect(threaded.counts()).toEqual({ calls: 1, frames: frames.length });
      await expect(threaded.runOne({ samples: new Float32Array(512), state: initialSileroState() })).rejects.toThrow(/576/);
    } finally {
      await here.close();
      await threaded.close();
    }
    await expect(threaded.runBatch([{ samples: new Float32Array(INPUT_SAMPLES), state: initialSileroState() }])).rejects.toThrow('the Silero VAD thread was closed');
  });
});

describe('examples/models: the generated MLP, run for real', () => {
  const folder = mkdtempSync(join(tmpdir(), 'rx-batcher-mlp-'));
  const path = join(folder, 'models', 'mlp.onnx');
  let mlp: Mlp;
  beforeAll(async () => {
    expect(existsSync(path)).toBe(false);
    mlp = await loadMlp({ path });
  });
  afterAll(async () => {
    await mlp.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('is generated when missing, deterministically, and left alone when present', () => {
    expect(existsSync(path)).toBe(true);
    const bytes = readFileSync(path);
    expect(bytes.length).toBeGreaterThan(5_000_000);
    expect(Buffer.from(buildMlpModel(1)).equals(bytes)).toBe(true);
    expect(ensureMlpModel(path)).toBe(path);
  });

  it('gives the same outputs batched as one at a time', async () => {
    const next = seededRandom(7);
    const inputs = Array.from({ length: 12 }, () => Float32Array.from({ length: MLP_INPUTS }, () => next() * 2 - 1));
    const batched = await mlp.runBatch(inputs);
    expect(batched).toHaveLength(inputs.length);
    let worst = 0;
    for (let i = 0; i < inputs.length; i++) {
      const alone = await mlp.runOne(inputs[i]);
      expect(alone).toHaveLength(MLP_OUTPUTS);
      worst = Math.max(worst, maxAbsDiff(batched[i], alone));
    }
    expect(worst).toBeLessThan(1e-4);
    expect(maxAbsDiff(batched[0], batched[1])).toBeGreaterThan(1e-3); // different inputs, different outputs
    expect(mlp.counts()).toEqual({ calls: 1 + inputs.length, inputs: 2 * inputs.length });
  });
});
