import { INPUT_SAMPLES, STATE_SAMPLES, initialSileroState, type SileroFrame, type SileroResult } from '../models';

/**
 * The `POST /vad` formats. A request is one 32 ms frame of 16 kHz audio and, optionally, the
 * state the previous frame of the same stream returned (without it: a new stream).
 *
 * - JSON (`Content-Type: application/json`):
 *   `{ "samples": [576 numbers], "state"?: [256 numbers] }` →
 *   `{ "probability": 0.93, "state": [256 numbers] }`.
 * - Binary (`Content-Type: application/octet-stream`): 576 float32 little-endian samples,
 *   optionally followed by 256 float32 of state (2304 or 3328 bytes) → 257 float32
 *   little-endian: the probability, then the new state (1028 bytes).
 *
 * The 576 samples are the last 64 samples of the previous frame, then 512 new ones, in [-1, 1].
 */
export const BINARY_TYPE = 'application/octet-stream';

/**
 * A request body the server cannot use; answered with HTTP 400 and this message.
 *
 * @example
 * ```ts
 * throw new BadFrameError('`samples` must hold 576 numbers');
 * ```
 */
export class BadFrameError extends Error {
  override readonly name = 'BadFrameError';
}

/**
 * Reads a JSON request body into a frame.
 *
 * @example
 * ```ts
 * const frame = frameFromJson({ samples: Array(576).fill(0) });
 * ```
 */
export function frameFromJson(body: unknown): SileroFrame {
  const { samples, state } = (body ?? {}) as { samples?: unknown; state?: unknown };
  return {
    samples: numbers(samples, INPUT_SAMPLES, 'samples', '64 samples of context then 512 new ones at 16 kHz'),
    state: state === undefined || state === null ? initialSileroState() : numbers(state, STATE_SAMPLES, 'state', 'the state your previous request returned; omit it for a new stream'),
  };
}

/**
 * Reads a binary request body (float32 little-endian) into a frame.
 *
 * @example
 * ```ts
 * const frame = frameFromBinary(Buffer.from(new Float32Array(576).buffer));
 * ```
 */
export function frameFromBinary(body: Buffer): SileroFrame {
  const withState = (INPUT_SAMPLES + STATE_SAMPLES) * 4;
  if (body.length !== INPUT_SAMPLES * 4 && body.length !== withState) {
    throw new BadFrameError(`a binary frame is ${INPUT_SAMPLES} float32 samples (${INPUT_SAMPLES * 4} bytes), optionally followed by ${STATE_SAMPLES} float32 of state (${withState} bytes in all); got ${body.length} bytes`);
  }
  const floats = float32LE(body);
  return { samples: floats.subarray(0, INPUT_SAMPLES), state: floats.length > INPUT_SAMPLES ? floats.subarray(INPUT_SAMPLES) : initialSileroState() };
}

/**
 * Encodes a frame as a binary request body (the client side of {@link frameFromBinary}).
 *
 * @example
 * ```ts
 * await request(url, { method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frame) });
 * ```
 */
export function frameToBinary(frame: { readonly samples: Float32Array; readonly state?: Float32Array }): Buffer {
  const floats = [...frame.samples, ...(frame.state ?? [])];
  const out = Buffer.alloc(floats.length * 4);
  floats.forEach((value, i) => out.writeFloatLE(value, i * 4));
  return out;
}

/**
 * Encodes a result as a binary response: the probability, then the state, float32 little-endian.
 *
 * @example
 * ```ts
 * reply.type(BINARY_TYPE).send(resultToBinary(result));
 * ```
 */
export function resultToBinary(result: SileroResult): Buffer {
  const floats = new Float32Array(1 + STATE_SAMPLES);
  floats[0] = result.probability;
  floats.set(result.state, 1);
  const out = Buffer.from(floats.buffer);
  return littleEndian ? out : out.swap32();
}

/**
 * Decodes a binary response (the client side of {@link resultToBinary}).
 *
 * @example
 * ```ts
 * const { probability, state } = resultFromBinary(Buffer.from(await response.body.arrayBuffer()));
 * ```
 */
export function resultFromBinary(body: Buffer): SileroResult {
  if (body.length !== (1 + STATE_SAMPLES) * 4) throw new Error(`a binary VAD result is ${(1 + STATE_SAMPLES) * 4} bytes, got ${body.length}`);
  const state = new Float32Array(STATE_SAMPLES);
  for (let i = 0; i < STATE_SAMPLES; i++) state[i] = body.readFloatLE((i + 1) * 4);
  return { probability: body.readFloatLE(0), state };
}

/** Copies float32 little-endian bytes into a new array (one copy, no per-value calls). */
function float32LE(bytes: Buffer): Float32Array {
  const copy = new Uint8Array(bytes); // a fresh, aligned buffer
  if (!littleEndian) Buffer.from(copy.buffer).swap32();
  return new Float32Array(copy.buffer);
}

const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function numbers(value: unknown, length: number, name: string, meaning: string): Float32Array {
  if (!Array.isArray(value) || value.length !== length || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new BadFrameError(`\`${name}\` must be an array of ${length} finite numbers (${meaning})`);
  }
  return Float32Array.from(value as number[]);
}
