import { FRAME_SAMPLES, SAMPLE_RATE } from '../models';
import type { SpeechEvent } from './protocol';

/**
 * Hysteresis rules for turning frame probabilities into speech segments.
 *
 * @example
 * ```ts
 * const rules: DetectorOptions = { threshold: 0.5, endThreshold: 0.35, minSilenceMs: 100 };
 * ```
 */
export interface DetectorOptions {
  /** A frame at or above this starts speech. @default 0.5 */
  readonly threshold?: number;
  /** While in speech, frames below this count as silence. @default threshold - 0.15 */
  readonly endThreshold?: number;
  /** Speech ends only after this much silence (short pauses inside words don't split). @default 100 */
  readonly minSilenceMs?: number;
}

/**
 * Turns one stream's frame probabilities, in order, into `speech-start` / `speech-end` events.
 * Speech starts at the first frame ≥ `threshold`; it ends where a run of frames below
 * `endThreshold` began, once that run lasts `minSilenceMs`.
 *
 * @example
 * ```ts
 * const detector = new SpeechDetector();
 * for (const p of probabilities) for (const event of detector.push(p)) console.log(event);
 * const last = detector.finish(); // closes a segment still open at the end of the stream
 * ```
 */
export class SpeechDetector {
  readonly #threshold: number;
  readonly #endThreshold: number;
  readonly #minSilenceFrames: number;
  #frame = 0;
  #speaking = false;
  /** First frame of the current run of silence inside speech, or -1. */
  #silenceFrom = -1;

  constructor(options: DetectorOptions = {}) {
    this.#threshold = options.threshold ?? 0.5;
    this.#endThreshold = options.endThreshold ?? this.#threshold - 0.15;
    this.#minSilenceFrames = Math.max(1, Math.ceil((options.minSilenceMs ?? 100) / ((FRAME_SAMPLES / SAMPLE_RATE) * 1000)));
    if (!(this.#endThreshold <= this.#threshold)) throw new RangeError(`endThreshold (${this.#endThreshold}) must not exceed threshold (${this.#threshold})`);
  }

  /** Whether the stream is inside a speech segment now. */
  get speaking(): boolean {
    return this.#speaking;
  }

  /** Takes the next frame's probability; returns the events it caused (zero or one). */
  push(probability: number): SpeechEvent[] {
    const frame = this.#frame++;
    if (!this.#speaking) {
      if (probability < this.#threshold) return [];
      this.#speaking = true;
      this.#silenceFrom = -1;
      return [event('speech-start', frame * FRAME_SAMPLES)];
    }
    if (probability >= this.#endThreshold) {
      this.#silenceFrom = -1;
      return [];
    }
    if (this.#silenceFrom < 0) this.#silenceFrom = frame;
    if (frame - this.#silenceFrom + 1 < this.#minSilenceFrames) return [];
    this.#speaking = false;
    return [event('speech-end', this.#silenceFrom * FRAME_SAMPLES)];
  }

  /** The stream ended: closes an open segment where its silence began, or at the end. */
  finish(): SpeechEvent[] {
    if (!this.#speaking) return [];
    this.#speaking = false;
    return [event('speech-end', (this.#silenceFrom >= 0 ? this.#silenceFrom : this.#frame) * FRAME_SAMPLES)];
  }
}

function event(type: SpeechEvent['type'], sample: number): SpeechEvent {
  return { type, sample, time: sample / SAMPLE_RATE };
}
