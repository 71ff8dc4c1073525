import { deserialize, serialize } from 'node:v8';

/**
 * Turns request inputs and results into bytes and back, for the trip through a broker.
 * Producers and workers of one subject must use the same codec.
 *
 * @example
 * ```ts
 * const json: Codec = {
 *   encode: (value) => Buffer.from(JSON.stringify(value)),
 *   decode: (bytes) => JSON.parse(Buffer.from(bytes).toString('utf8')),
 * };
 * const scorer = remoteBatcher(transport, 'scorer', { codec: json });
 * ```
 */
export interface Codec {
  /** Encodes one input or one result. Throwing rejects that one call (producer) or fails that one slot (worker). */
  encode(value: unknown): Uint8Array;
  /** Decodes bytes made by `encode`. */
  decode(bytes: Uint8Array): unknown;
}

/**
 * The default codec: Node's structured clone (`v8.serialize`), with a short form for the values
 * models are fed most. Carries typed arrays (`Float32Array` model inputs), `Map`, `Set`,
 * `Date`, `BigInt`, nested objects and `Error`s intact; both ends must run Node.js.
 *
 * A number, a string, `true`, `false`, `null`, `undefined` or a plain typed array
 * (`Float32Array`, `Int32Array`, …, not a `Buffer` or another subclass) is written as one tag
 * byte and its bytes (a typed array's own bytes, in this machine's byte order, as
 * `v8.serialize` writes them): `v8.serialize` spends about a microsecond on a number, and
 * several on a frame of audio, building a serializer each time. Anything else is
 * `v8.serialize`'s output, which starts with the byte `0xFF`, so `decode` reads both (and
 * what a producer or worker of 0.1 wrote).
 *
 * @example
 * ```ts
 * const bytes = v8Codec.encode({ frame: new Float32Array([0.1, 0.2]) });
 * (v8Codec.decode(bytes) as { frame: Float32Array }).frame; // Float32Array [0.1, 0.2]
 * v8Codec.encode(0.5).byteLength; // 9: a tag and the float64
 * ```
 */
export const v8Codec: Codec = Object.freeze({
  encode: encodeValue,
  decode: decodeValue,
});

function encodeValue(value: unknown): Uint8Array {
  switch (typeof value) {
    case 'number': {
      const bytes = Buffer.allocUnsafe(9);
      bytes[0] = TAG_NUMBER;
      bytes.writeDoubleLE(value, 1);
      return bytes;
    }
    case 'string': {
      const length = Buffer.byteLength(value, 'utf8');
      const bytes = Buffer.allocUnsafe(1 + length);
      bytes[0] = TAG_STRING;
      bytes.write(value, 1, length, 'utf8');
      return bytes;
    }
    case 'boolean':
      return Uint8Array.of(value ? TAG_TRUE : TAG_FALSE);
    case 'undefined':
      return Uint8Array.of(TAG_UNDEFINED);
    case 'object': {
      if (value === null) return Uint8Array.of(TAG_NULL);
      const kind = ArrayBuffer.isView(value) ? TYPED_ARRAYS.indexOf((value as unknown as { constructor: TypedArrayConstructor }).constructor) : -1;
      if (kind === -1) return serialize(value);
      const view = value as ArrayBufferView;
      const bytes = Buffer.allocUnsafe(1 + view.byteLength);
      bytes[0] = TAG_TYPED_ARRAY + kind;
      bytes.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 1);
      return bytes;
    }
    default:
      return serialize(value);
  }
}

function decodeValue(bytes: Uint8Array): unknown {
  const tag = bytes[0];
  if (tag === V8_HEADER) return deserialize(bytes);
  const length = bytes.byteLength;
  if (tag === TAG_NUMBER && length === 9) return Buffer.from(bytes.buffer, bytes.byteOffset, 9).readDoubleLE(1);
  if (tag === TAG_STRING) return Buffer.from(bytes.buffer, bytes.byteOffset + 1, length - 1).toString('utf8');
  if (length === 1) {
    if (tag === TAG_TRUE) return true;
    if (tag === TAG_FALSE) return false;
    if (tag === TAG_NULL) return null;
    if (tag === TAG_UNDEFINED) return undefined;
  }
  const kind = tag - TAG_TYPED_ARRAY;
  if (kind >= 0 && kind < TYPED_ARRAYS.length) {
    const Type = TYPED_ARRAYS[kind];
    if ((length - 1) % Type.BYTES_PER_ELEMENT === 0) {
      // A copy: the bytes may sit at any offset of a frame, and a typed array needs its own alignment.
      const out = new Type((length - 1) / Type.BYTES_PER_ELEMENT);
      new Uint8Array(out.buffer).set(bytes.subarray(1));
      return out;
    }
  }
  throw new TypeError(`v8Codec.decode: these ${length} bytes were not made by v8Codec.encode (first byte ${tag === undefined ? 'none' : `0x${tag.toString(16)}`}); producers and workers of one subject must use the same codec.`);
}

type TypedArrayConstructor =
  | Float32ArrayConstructor | Float64ArrayConstructor | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor
  | Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | Uint8ClampedArrayConstructor
  | BigInt64ArrayConstructor | BigUint64ArrayConstructor;

/** The typed arrays with a short form, by their tag's offset from TAG_TYPED_ARRAY (append only: the index is on the wire). */
const TYPED_ARRAYS: readonly TypedArrayConstructor[] = [
  Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Uint8Array, Uint16Array, Uint32Array, Uint8ClampedArray, BigInt64Array, BigUint64Array,
];
/** `v8.serialize` output always starts with its version tag. */
const V8_HEADER = 0xff;
const TAG_NUMBER = 0x01;
const TAG_STRING = 0x02;
const TAG_TRUE = 0x03;
const TAG_FALSE = 0x04;
const TAG_NULL = 0x05;
const TAG_UNDEFINED = 0x06;
const TAG_TYPED_ARRAY = 0x10;

/**
 * A JSON codec, for workers written in other languages. Typed arrays do not survive it
 * (they become plain objects); send `Array.from(x)` instead.
 *
 * @example
 * ```ts
 * const worker = await serveBatches(transport, 'scorer', runBatch, { maxBatchSize: 32, codec: jsonCodec });
 * ```
 */
export const jsonCodec: Codec = Object.freeze({
  encode: (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8'),
  decode: (bytes: Uint8Array): unknown => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')),
});
