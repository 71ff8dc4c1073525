import { deserialize, serialize } from 'node:v8';

/**
 * How one request was answered, as it travels back to its producer.
 * `ok`: `data` holds the codec-encoded result. `error`: `data` describes the error.
 * `bad-result`: runBatch returned the wrong number of results.
 */
export type WireReply =
  | readonly [id: string, status: 'ok', data: Uint8Array]
  | readonly [id: string, status: 'error', data: WireError]
  | readonly [id: string, status: 'bad-result', data: { expected: number; actual: number | undefined }];

/** An error made portable. */
export interface WireError {
  readonly kind: 'batch-failed' | 'item-failed' | 'deliveries-exhausted' | 'decode-failed' | 'payload-too-large';
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/** Packs the replies of one batch for one producer into one frame. */
export function encodeReplies(replies: readonly WireReply[]): Uint8Array {
  return serialize(replies);
}

/** Unpacks a frame made by {@link encodeReplies}; `undefined` for a frame that is not one (garbage, cut short). */
export function decodeReplies(frame: Uint8Array): WireReply[] | undefined {
  let value: unknown;
  try {
    value = deserialize(frame);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  for (const reply of value as unknown[]) {
    if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !STATUSES.has(reply[1])) return undefined;
  }
  return value as WireReply[];
}

const STATUSES = new Set<unknown>(['ok', 'error', 'bad-result']);

/** Describes any thrown value as a portable error. */
export function toWireError(kind: WireError['kind'], error: unknown): WireError {
  if (error instanceof Error) {
    return { kind, name: error.name, message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) };
  }
  return { kind, name: 'Error', message: String(error) };
}
