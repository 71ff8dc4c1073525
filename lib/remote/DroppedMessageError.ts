import { prefix } from '../errors/describe.js';

/**
 * Why a message from the broker was dropped unread:
 * - `'forged'`: signing is on (`auth`) and its signature is missing or does not verify with
 *   any key: written by a client without the key, altered, replayed for another request, or
 *   the two sides have different keys;
 * - `'oversized'`: over `maxPayloadBytes`, so it was not decoded;
 * - `'malformed'`: not a reply frame at all (garbage, or cut short).
 *
 * @example
 * ```ts
 * const alert = (reason: DropReason): boolean => reason === 'forged';
 * ```
 */
export type DropReason = 'forged' | 'oversized' | 'malformed';

/**
 * What a producer or worker reports through `onError` for each message it dropped without
 * acting on it (counted in its stats as `forged`, `oversized` or `malformed`). A worker
 * acknowledges a dropped request without running it; a producer drops a reply frame and its
 * callers keep waiting for the real reply.
 *
 * @example
 * ```ts
 * const worker = await serveBatches(transport, 'scorer', runBatch, {
 *   maxBatchSize: 32, auth: { keys: [key] },
 *   onError: (e) => { if (e instanceof DroppedMessageError && e.reason === 'forged') securityLog.warn(e.message); },
 * });
 * ```
 */
export class DroppedMessageError extends Error {
  /** Always `'DroppedMessageError'`. */
  override readonly name = 'DroppedMessageError';
  /** The producer's or worker's name. */
  readonly batcher: string;
  /** Why it was dropped. */
  readonly reason: DropReason;
  /** The message's size in bytes (a request's body and context, or a whole reply frame). */
  readonly bytes: number;

  constructor(batcher: string, reason: DropReason, bytes: number, message: string) {
    super(`${prefix(batcher)} ${message}`);
    this.batcher = batcher;
    this.reason = reason;
    this.bytes = bytes;
  }
}
