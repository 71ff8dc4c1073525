/**
 * Audio decoded from a WAV file: mono samples in [-1, 1] and their rate.
 *
 * @example
 * ```ts
 * const { samples, sampleRate } = readWav(readFileSync('clip.wav'));
 * ```
 */
export interface Audio {
  readonly sampleRate: number;
  readonly samples: Float32Array;
}

/**
 * Reads a PCM WAV file (8-, 16- or 32-bit integer, or 32-bit float; any channel count, mixed
 * down to mono). Tolerates the "unknown length" headers streaming writers such as
 * `espeak-ng --stdout` produce.
 *
 * @example
 * ```ts
 * const audio = readWav(readFileSync('speech-16k.wav'));
 * console.log(audio.samples.length / audio.sampleRate, 'seconds');
 * ```
 */
export function readWav(bytes: Uint8Array): Audio {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new Error('not a WAV file: it must start with RIFF....WAVE');
  let format: { code: number; channels: number; sampleRate: number; bits: number } | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = tag(offset);
    const declared = view.getUint32(offset + 4, true);
    const body = offset + 8;
    const size = Math.min(declared, bytes.length - body);
    if (id === 'fmt ') {
      format = { code: view.getUint16(body, true), channels: view.getUint16(body + 2, true), sampleRate: view.getUint32(body + 4, true), bits: view.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (format === undefined) throw new Error('WAV file has its data chunk before its fmt chunk');
      return { sampleRate: format.sampleRate, samples: decodePcm(view, body, size, format) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error('WAV file has no data chunk');
}

function decodePcm(view: DataView, start: number, size: number, format: { code: number; channels: number; bits: number }): Float32Array {
  const bytesPerSample = format.bits / 8;
  const frameBytes = bytesPerSample * format.channels;
  const frames = Math.floor(size / frameBytes);
  const read = sampleReader(view, format.code, format.bits);
  const out = new Float32Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < format.channels; c++) sum += read(start + i * frameBytes + c * bytesPerSample);
    out[i] = sum / format.channels;
  }
  return out;
}

function sampleReader(view: DataView, code: number, bits: number): (at: number) => number {
  const pcm = code === 1 || code === 0xfffe;
  if (pcm && bits === 16) return (at) => view.getInt16(at, true) / 32768;
  if (pcm && bits === 8) return (at) => (view.getUint8(at) - 128) / 128;
  if (pcm && bits === 32) return (at) => view.getInt32(at, true) / 2147483648;
  if (code === 3 && bits === 32) return (at) => view.getFloat32(at, true);
  throw new Error(`unsupported WAV encoding (format ${code}, ${bits} bits): convert it to 16-bit PCM first`);
}

/**
 * Encodes mono samples in [-1, 1] as a 16-bit PCM WAV file.
 *
 * @example
 * ```ts
 * writeFileSync('out.wav', encodeWav(samples, 16_000));
 * ```
 */
export function encodeWav(samples: Float32Array, sampleRate: number): Buffer {
  const out = Buffer.alloc(44 + samples.length * 2);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + samples.length * 2, 4);
  out.write('WAVEfmt ', 8, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(samples.length * 2, 40);
  samples.forEach((s, i) => out.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32767), 44 + i * 2));
  return out;
}

/**
 * Changes the sample rate with a windowed-sinc filter (Hann window, 16 taps each side), low-pass
 * filtering first when the rate goes down.
 *
 * @example
 * ```ts
 * const at16k = resample(audio.samples, 22_050, 16_000);
 * ```
 */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (fromRate === toRate) return samples.slice();
  const ratio = fromRate / toRate;
  const cutoff = Math.min(1, toRate / fromRate);
  const radius = 16;
  const out = new Float32Array(Math.floor(samples.length / ratio));
  for (let n = 0; n < out.length; n++) {
    const t = n * ratio;
    const first = Math.max(0, Math.ceil(t - radius / cutoff));
    const last = Math.min(samples.length - 1, Math.floor(t + radius / cutoff));
    let sum = 0;
    for (let k = first; k <= last; k++) {
      const x = (t - k) * cutoff;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const window = 0.5 + 0.5 * Math.cos((Math.PI * x) / radius);
      sum += samples[k] * sinc * window * cutoff;
    }
    out[n] = sum;
  }
  return out;
}
