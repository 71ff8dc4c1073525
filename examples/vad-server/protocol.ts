/**
 * The streaming VAD protocol, over one WebSocket per audio stream.
 *
 * Client → server:
 * - binary messages: the audio, 16 kHz mono, signed 16-bit little-endian PCM, any number of
 *   samples per message (an even number of bytes);
 * - the text message `{"type":"end"}`: no more audio; the server finishes the frames it has,
 *   closes an open speech segment and answers `done`.
 *
 * Server → client, JSON text messages ({@link VadMessage}):
 * - `speech-start` / `speech-end` as they are detected, with the sample offset and time in the
 *   stream where speech began / ended;
 * - `frame` with every frame's probability, only when the client connected with
 *   `?probabilities=1`;
 * - `done` after `end`; `error` before the server closes a stream it cannot serve.
 *
 * Audio is cut into 512-sample frames (32 ms); a trailing partial frame is not scored.
 */

/** A speech boundary. `sample` counts from the first sample the client sent. */
export interface SpeechEvent {
  readonly type: 'speech-start' | 'speech-end';
  readonly sample: number;
  /** `sample / 16000`, in seconds. */
  readonly time: number;
}

/** One frame's speech probability (sent only with `?probabilities=1`). */
export interface FrameMessage {
  readonly type: 'frame';
  /** Frame number in the stream, from 0; frame n covers samples [512n, 512n + 512). */
  readonly frame: number;
  readonly probability: number;
}

/** The answer to `{"type":"end"}`: every frame has been scored. */
export interface DoneMessage {
  readonly type: 'done';
  readonly frames: number;
}

/** The server gives up on this stream (bad input, model failure) and closes it. */
export interface ErrorMessage {
  readonly type: 'error';
  readonly message: string;
}

/**
 * Everything the server sends.
 *
 * @example
 * ```ts
 * socket.on('message', (data) => {
 *   const message = JSON.parse(String(data)) as VadMessage;
 *   if (message.type === 'speech-start') console.log('speech at', message.time, 's');
 * });
 * ```
 */
export type VadMessage = SpeechEvent | FrameMessage | DoneMessage | ErrorMessage;

/**
 * Encodes samples in [-1, 1] as 16-bit little-endian PCM, the protocol's audio format.
 *
 * @example
 * ```ts
 * socket.send(encodePcm16(chunk));
 * ```
 */
export function encodePcm16(samples: Float32Array): Buffer {
  const out = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767), i * 2);
  return out;
}

/**
 * Decodes 16-bit little-endian PCM into samples in [-1, 1].
 *
 * @example
 * ```ts
 * const samples = decodePcm16(message); // message: Buffer from ws
 * ```
 */
export function decodePcm16(bytes: Buffer): Float32Array {
  if (bytes.length % 2 !== 0) throw new RangeError(`audio messages must hold whole 16-bit samples, got ${bytes.length} bytes`);
  const out = new Float32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2) / 32768;
  return out;
}
