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
 * The default codec: Node's structured clone (`v8.serialize`). Carries typed arrays
 * (`Float32Array` model inputs), `Map`, `Set`, `Date`, `BigInt`, nested objects and `Error`s
 * intact; both ends must run Node.js.
 *
 * @example
 * ```ts
 * const bytes = v8Codec.encode({ frame: new Float32Array([0.1, 0.2]) });
 * (v8Codec.decode(bytes) as { frame: Float32Array }).frame; // Float32Array [0.1, 0.2]
 * ```
 */
export const v8Codec: Codec = Object.freeze({
  encode: (value: unknown): Uint8Array => serialize(value),
  decode: (bytes: Uint8Array): unknown => deserialize(bytes),
});

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
