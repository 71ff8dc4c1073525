/**
 * Makes the speech clip the VAD examples and the demo stream: a sentence spoken by Debian's
 * `espeak-ng`, resampled to 16 kHz mono, with 1 s of silence before and after, written as a
 * 16-bit PCM WAV next to this file. The clip is committed, so only rerun this to change it:
 *
 *     apt-get install -y espeak-ng && npx tsx examples/speech/make-clip.ts
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { CLIP_FILE, CLIP_PADDING_SECONDS } from './clip';
import { encodeWav, readWav, resample } from './wav';

/** The sentence spoken in the clip. */
export const CLIP_TEXT = 'Batching turns many small requests into a few large ones.';

/**
 * Speaks `text` with espeak-ng and returns a 16 kHz clip padded with silence, as WAV bytes.
 *
 * @example
 * ```ts
 * writeFileSync('hello.wav', makeSpeechClip('hello world'));
 * ```
 */
export function makeSpeechClip(text = CLIP_TEXT, sampleRate = 16_000, paddingSeconds = CLIP_PADDING_SECONDS): Buffer {
  let spoken: Buffer;
  try {
    spoken = execFileSync('espeak-ng', ['--stdout', '-v', 'en-us', '-s', '150', text], { maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    throw new Error(`could not run espeak-ng (install it with: apt-get install -y espeak-ng): ${(error as Error).message}`);
  }
  const voice = readWav(spoken);
  const speech = trimSilence(resample(voice.samples, voice.sampleRate, sampleRate));
  const padding = Math.round(paddingSeconds * sampleRate);
  const clip = new Float32Array(padding + speech.length + padding);
  clip.set(speech, padding);
  return encodeWav(clip, sampleRate);
}

/**
 * Cuts the near-silence (|sample| ≤ `threshold`) espeak-ng leaves before and after the speech,
 * so the clip's padding says exactly where the speech is.
 *
 * @example
 * ```ts
 * trimSilence(Float32Array.of(0, 0, 0.5, 0)); // Float32Array [0.5]
 * ```
 */
export function trimSilence(samples: Float32Array, threshold = 0.005): Float32Array {
  let first = 0;
  while (first < samples.length && Math.abs(samples[first]) <= threshold) first++;
  let last = samples.length - 1;
  while (last > first && Math.abs(samples[last]) <= threshold) last--;
  return samples.slice(first, last + 1);
}

if (require.main === module) {
  const wav = makeSpeechClip();
  writeFileSync(CLIP_FILE, wav);
  console.log(`wrote ${CLIP_FILE}: ${wav.length} bytes, "${CLIP_TEXT}"`);
}
