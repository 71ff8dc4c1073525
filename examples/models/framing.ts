import { CONTEXT_SAMPLES, INPUT_SAMPLES, initialSileroState, type SileroResult, type SileroVad } from './sileroVad';

/**
 * Cuts a stream of 16 kHz samples, arriving in chunks of any size, into Silero model inputs:
 * 576 samples each, the last 64 of the previous frame followed by 512 new ones. The context of
 * the first frame is silence (zeros). Leftover samples wait for the next chunk.
 *
 * @example
 * ```ts
 * const cutter = new FrameCutter();
 * for (const input of cutter.push(chunk)) await vad.runOne({ samples: input, state });
 * ```
 */
export class FrameCutter {
  readonly #pending = new Float32Array(INPUT_SAMPLES);
  /** Samples in `#pending`, counting the 64 of context. */
  #filled = CONTEXT_SAMPLES;
  /** Complete frames cut so far. */
  frames = 0;

  /** Adds samples; returns every frame they completed (fresh arrays, in order). */
  push(chunk: Float32Array): Float32Array[] {
    const out: Float32Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(INPUT_SAMPLES - this.#filled, chunk.length - offset);
      this.#pending.set(chunk.subarray(offset, offset + take), this.#filled);
      this.#filled += take;
      offset += take;
      if (this.#filled === INPUT_SAMPLES) {
        out.push(this.#pending.slice());
        this.#pending.copyWithin(0, INPUT_SAMPLES - CONTEXT_SAMPLES);
        this.#filled = CONTEXT_SAMPLES;
        this.frames++;
      }
    }
    return out;
  }
}

/**
 * Every complete frame of a whole clip as model inputs (a trailing partial frame is dropped).
 *
 * @example
 * ```ts
 * const inputs = framesOf(clip.samples); // clip.samples.length / 512 frames
 * ```
 */
export function framesOf(audio: Float32Array): Float32Array[] {
  return new FrameCutter().push(audio);
}

/**
 * Scores a whole clip one frame at a time, carrying the state from frame to frame: the
 * reference a batched path must reproduce.
 *
 * @example
 * ```ts
 * const probabilities = await scoreSequentially(vad, clip.samples);
 * ```
 */
export async function scoreSequentially(vad: Pick<SileroVad, 'runOne'>, audio: Float32Array): Promise<number[]> {
  let state = initialSileroState();
  const probabilities: number[] = [];
  for (const samples of framesOf(audio)) {
    const result: SileroResult = await vad.runOne({ samples, state });
    probabilities.push(result.probability);
    state = result.state;
  }
  return probabilities;
}
