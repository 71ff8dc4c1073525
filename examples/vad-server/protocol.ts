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
 * - `done` after `end`; `error` before the server closes a stream it cannot serve (close code
 *   1011);
 * - `overloaded` before the server closes a stream it cannot score in real time (close code
 *   1013, "try again later"). A frame is due when it arrives, or 32 ms after the one before it
 *   if that is later, so audio sent faster than real time (a file) is not behind. When streams
 *   fall half of `maxLagMs` (default 1 s) behind while frames arrive faster than they are
 *   scored, the server lets the newest streams go (all but as many as the frames scored feed), and
 *   turns new ones away for a while (right after they connect); a stream that still falls
 *   `maxLagMs` behind is told too. The batcher also serves older streams' frames first. So the
 *   older streams stay in real time.
 *
 * Audio is cut into 512-sample frames (32 ms); a trailing partial frame is not scored. When the
 * server shuts down, it scores the frames it already has, sends their events and `done`, and
 * closes the connection with code 1001 (going away).
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

/** The server gives up on this stream (bad input, model failure) and closes it (1011). */
export interface ErrorMessage {
  readonly type: 'error';
  readonly message: string;
}

/** The server cannot score this stream in real time and closes it (1013): try again later, or elsewhere. */
export interface OverloadedMessage {
  readonly type: 'overloaded';
  /** How far behind real time the stream was, in ms (0 for a stream turned away on connecting). */
  readonly lagMs: number;
  readonly message: string;
}

/**
 * The close code that goes with {@link OverloadedMessage}: 1013, "try again later".
 *
 * @example
 * ```ts
 * if ((await client.closed) === OVERLOADED_CLOSE_CODE) setTimeout(reconnect, 1000);
 * ```
 */
export const OVERLOADED_CLOSE_CODE = 1013;

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
export type VadMessage = SpeechEvent | FrameMessage | DoneMessage | ErrorMessage | OverloadedMessage;

/**
 * Encodes samples in [-1, 1] as 16-bit little-endian PCM, the protocol's audio format.
 *
 * @example
 * ```ts
 * socket.send(encodePcm16(chunk));
 * ```
 */
export function encodePcm16(samples: Float32Array): Buffer {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    pcm[i] = s >= 1 ? 32767 : s <= -1 ? -32767 : Math.round(s * 32767);
  }
  const out = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return littleEndian ? out : out.swap16();
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
  // An Int16Array view needs 2-byte alignment and native little-endian order; copy otherwise.
  let aligned = bytes;
  if (bytes.byteOffset % 2 !== 0 || !littleEndian) {
    aligned = Buffer.alloc(bytes.length); // unpooled: offset 0
    bytes.copy(aligned);
    if (!littleEndian) aligned.swap16();
  }
  const pcm = new Int16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
