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

/**
 * Packs the replies of one batch for one producer into one frame. The frame is binary and
 * copies each result's bytes once (no structured clone of the whole list):
 *
 * ```
 * frame  = 'r' 'x' version(1) count(u32 LE) reply × count
 * reply  = status(u8: 0 ok, 1 error, 2 bad-result) idLength(u16 LE) id(UTF-8) dataLength(u32 LE) data
 * ```
 *
 * `ok` data is the codec-encoded result; `error` and `bad-result` data is JSON. A reply whose
 * request id is over 65535 bytes of UTF-8 (no producer makes one) is left out.
 */
export function encodeReplies(replies: readonly WireReply[]): Uint8Array {
  const n = replies.length;
  const ids = new Array<number>(n);
  const data = new Array<Uint8Array>(n);
  let size = HEADER_BYTES;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const reply = replies[i];
    ids[i] = Buffer.byteLength(reply[0], 'utf8');
    // No producer makes such an id (theirs are ~12 bytes): a foreign request's reply is left out, not the frame.
    if (ids[i] > MAX_ID_BYTES) continue;
    const bytes = reply[1] === 'ok' ? reply[2] : Buffer.from(JSON.stringify(reply[2]), 'utf8');
    data[i] = bytes;
    size += REPLY_HEAD_BYTES + ids[i] + bytes.byteLength;
    count++;
  }
  const frame = Buffer.allocUnsafe(size);
  frame[0] = MAGIC_0;
  frame[1] = MAGIC_1;
  frame[2] = VERSION;
  frame.writeUInt32LE(count, 3);
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const reply = replies[i];
    if (ids[i] > MAX_ID_BYTES) continue;
    frame[at] = STATUS_CODES[reply[1]];
    frame.writeUInt16LE(ids[i], at + 1);
    at += 3;
    at += frame.write(reply[0], at, ids[i], 'utf8');
    const bytes = data[i];
    frame.writeUInt32LE(bytes.byteLength, at);
    at += 4;
    frame.set(bytes, at);
    at += bytes.byteLength;
  }
  return frame;
}

/**
 * Unpacks a frame made by {@link encodeReplies}; `undefined` for a frame that is not one
 * (garbage, cut short, a count or a length that does not match). `ok` data are views into the frame.
 */
export function decodeReplies(frame: Uint8Array): WireReply[] | undefined {
  const end = frame.byteLength;
  if (end < HEADER_BYTES || frame[0] !== MAGIC_0 || frame[1] !== MAGIC_1 || frame[2] !== VERSION) return undefined;
  const buffer = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, end);
  const n = buffer.readUInt32LE(3);
  // Each reply takes at least its head: a count beyond that is a lie (and no huge array is made for it).
  if (n > (end - HEADER_BYTES) / REPLY_HEAD_BYTES) return undefined;
  const replies = new Array<WireReply>(n);
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (at + REPLY_HEAD_BYTES > end) return undefined;
    const status = buffer[at];
    const idEnd = at + 3 + buffer.readUInt16LE(at + 1);
    if (idEnd + 4 > end) return undefined;
    const id = buffer.toString('utf8', at + 3, idEnd);
    const dataEnd = idEnd + 4 + buffer.readUInt32LE(idEnd);
    if (dataEnd > end) return undefined;
    const data = buffer.subarray(idEnd + 4, dataEnd);
    at = dataEnd;
    if (status === 0) replies[i] = [id, 'ok', data];
    else {
      let value: unknown;
      try {
        value = JSON.parse(data.toString('utf8'));
      } catch {
        return undefined;
      }
      if (typeof value !== 'object' || value === null) return undefined;
      if (status === 1) {
        const e = value as Partial<WireError>;
        if (typeof e.kind !== 'string' || typeof e.name !== 'string' || typeof e.message !== 'string') return undefined;
        replies[i] = [id, 'error', value as WireError];
      } else if (status === 2) replies[i] = [id, 'bad-result', value as { expected: number; actual: number | undefined }];
      else return undefined;
    }
  }
  return at === end ? replies : undefined;
}

/** 'r' 'x', then the frame format's version: a frame of another version is not read as this one. */
const MAGIC_0 = 0x72;
const MAGIC_1 = 0x78;
const VERSION = 1;
const HEADER_BYTES = 7;
const MAX_ID_BYTES = 0xffff;
/** status, id length, data length. */
const REPLY_HEAD_BYTES = 7;
const STATUS_CODES: Record<WireReply[1], number> = { ok: 0, error: 1, 'bad-result': 2 };

/** Describes any thrown value as a portable error. */
export function toWireError(kind: WireError['kind'], error: unknown): WireError {
  if (error instanceof Error) {
    return { kind, name: error.name, message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) };
  }
  return { kind, name: 'Error', message: String(error) };
}
