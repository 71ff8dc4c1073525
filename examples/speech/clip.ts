import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWav } from './wav';

/** The committed clip, made by `make-clip.ts`. */
export const CLIP_FILE = join(__dirname, 'speech-16k.wav');
/** Seconds of silence before and after the speech in the clip. */
export const CLIP_PADDING_SECONDS = 1;

/**
 * The speech clip with where its speech lies.
 *
 * @example
 * ```ts
 * const clip = loadSpeechClip();
 * console.log(clip.speechStart / clip.sampleRate, '…', clip.speechEnd / clip.sampleRate);
 * ```
 */
export interface SpeechClip {
  readonly sampleRate: number;
  /** Mono samples in [-1, 1]. */
  readonly samples: Float32Array;
  /** Sample where the silence before the speech ends (no speech before it). */
  readonly speechStart: number;
  /** Sample where the silence after the speech begins (no speech after it). */
  readonly speechEnd: number;
}

/**
 * Loads the committed 16 kHz speech clip: a sentence spoken by espeak-ng with 1 s of silence
 * before and after it.
 *
 * @example
 * ```ts
 * const { samples } = loadSpeechClip(); // Float32Array at 16 kHz
 * ```
 */
export function loadSpeechClip(file = CLIP_FILE): SpeechClip {
  const { sampleRate, samples } = readWav(readFileSync(file));
  const padding = CLIP_PADDING_SECONDS * sampleRate;
  return { sampleRate, samples, speechStart: padding, speechEnd: samples.length - padding };
}
