import type { RequestMessage } from './transport.js';

/**
 * A request read from a packed broker entry, with how many times it was delivered before
 * this entry held it (0 for a request a producer sent; more for one a worker appended again
 * after it had been delivered, see {@link PackedEntries}).
 *
 * @example
 * ```ts
 * const [first] = decodeRequestPacket(bytes)!;
 * const deliveries = first.earlier + entryDeliveries;
 * ```
 */
export interface PackedRequest extends RequestMessage {
  /** Deliveries before the entry that holds it now. */
  readonly earlier: number;
}

/**
 * Packs a producer's tick of requests into one broker entry (one stream entry, one JetStream
 * message): the broker then stores, hands out and acknowledges one thing per tick instead of
 * one per request. Binary, with each body copied once:
 *
 * ```
 * packet  = 'r' 'q' version(1) count(u32 LE) request × count
 * request = flags(u8) earlier(u8) idLength(u16 LE) id(UTF-8)
 *           [replyToLength(u16 LE) replyTo(UTF-8)]   unless flags & SAME_REPLY_TO
 *           [deadline(f64 LE)] [priority(f64 LE)] [contextLength(u32 LE) context] [macLength(u8) mac]
 *           bodyLength(u32 LE) body
 * ```
 *
 * `earlier(i)` gives each request's deliveries before this entry (at most 255; absent: 0).
 *
 * @example
 * ```ts
 * const packet = encodeRequestPacket(messages);
 * await redis.xadd('rxb:scorer', '*', 'q', Buffer.from(packet));
 * ```
 */
export function encodeRequestPacket(messages: readonly RequestMessage[], earlier?: (index: number) => number): Uint8Array {
  const n = messages.length;
  const ids = new Array<number>(n);
  const replies = new Array<number>(n);
  let size = HEADER_BYTES;
  let previousReply: string | undefined;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    ids[i] = Buffer.byteLength(m.id, 'utf8');
    if (ids[i] > MAX_SHORT) throw new RangeError(`encodeRequestPacket: request id is ${ids[i]} bytes, over ${MAX_SHORT}`);
    size += FIXED_BYTES + ids[i] + m.body.byteLength;
    if (m.replyTo !== previousReply) {
      replies[i] = Buffer.byteLength(m.replyTo, 'utf8');
      if (replies[i] > MAX_SHORT) throw new RangeError(`encodeRequestPacket: replyTo is ${replies[i]} bytes, over ${MAX_SHORT}`);
      size += 2 + replies[i];
      previousReply = m.replyTo;
    } else replies[i] = -1;
    if (m.deadline !== undefined) size += 8;
    if (m.priority !== undefined) size += 8;
    if (m.context !== undefined) size += 4 + m.context.byteLength;
    if (m.mac !== undefined) {
      if (m.mac.byteLength > MAX_MAC) throw new RangeError(`encodeRequestPacket: mac is ${m.mac.byteLength} bytes, over ${MAX_MAC}`);
      size += 1 + m.mac.byteLength;
    }
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = VERSION;
  out.writeUInt32LE(n, 3);
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const m = messages[i];
    let flags = 0;
    if (replies[i] < 0) flags |= SAME_REPLY_TO;
    if (m.deadline !== undefined) flags |= HAS_DEADLINE;
    if (m.priority !== undefined) flags |= HAS_PRIORITY;
    if (m.context !== undefined) flags |= HAS_CONTEXT;
    if (m.mac !== undefined) flags |= HAS_MAC;
    out[at] = flags;
    out[at + 1] = Math.max(0, Math.min(MAX_EARLIER, earlier === undefined ? 0 : earlier(i) | 0));
    out.writeUInt16LE(ids[i], at + 2);
    at += 4;
    at += out.write(m.id, at, ids[i], 'utf8');
    if (replies[i] >= 0) {
      out.writeUInt16LE(replies[i], at);
      at += 2;
      at += out.write(m.replyTo, at, replies[i], 'utf8');
    }
    if (m.deadline !== undefined) at = out.writeDoubleLE(m.deadline, at);
    if (m.priority !== undefined) at = out.writeDoubleLE(m.priority, at);
    if (m.context !== undefined) at = copyLong(out, at, m.context);
    if (m.mac !== undefined) {
      out[at] = m.mac.byteLength;
      out.set(m.mac, at + 1);
      at += 1 + m.mac.byteLength;
    }
    at = copyLong(out, at, m.body);
  }
  return out;
}

/**
 * Unpacks a packet made by {@link encodeRequestPacket}; `undefined` for bytes that are not one
 * (another format, cut short, a count or a length that does not match: a forged or damaged
 * entry). Bodies, contexts and signatures are views into `bytes`.
 *
 * @example
 * ```ts
 * const requests = decodeRequestPacket(entryBytes);
 * if (requests === undefined) dropMalformed(entry);
 * ```
 */
export function decodeRequestPacket(bytes: Uint8Array): PackedRequest[] | undefined {
  const end = bytes.byteLength;
  if (!isRequestPacket(bytes)) return undefined;
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, end);
  const n = b.readUInt32LE(3);
  // Each request takes at least its fixed part: a count beyond that is a lie (and no huge array is made for it).
  if (n > (end - HEADER_BYTES) / FIXED_BYTES) return undefined;
  const out = new Array<PackedRequest>(n);
  let at = HEADER_BYTES;
  let replyTo: string | undefined;
  for (let i = 0; i < n; i++) {
    if (at + 4 > end) return undefined;
    const flags = b[at];
    const earlier = b[at + 1];
    const idEnd = at + 4 + b.readUInt16LE(at + 2);
    if (idEnd > end || flags & ~KNOWN_FLAGS) return undefined;
    const id = b.toString('utf8', at + 4, idEnd);
    at = idEnd;
    if ((flags & SAME_REPLY_TO) === 0) {
      if (at + 2 > end) return undefined;
      const replyEnd = at + 2 + b.readUInt16LE(at);
      if (replyEnd > end) return undefined;
      replyTo = b.toString('utf8', at + 2, replyEnd);
      at = replyEnd;
    } else if (replyTo === undefined) return undefined;
    const r: { -readonly [K in keyof PackedRequest]: PackedRequest[K] } = { id, replyTo, body: EMPTY, earlier };
    if (flags & HAS_DEADLINE) {
      if (at + 8 > end) return undefined;
      r.deadline = b.readDoubleLE(at);
      at += 8;
    }
    if (flags & HAS_PRIORITY) {
      if (at + 8 > end) return undefined;
      r.priority = b.readDoubleLE(at);
      at += 8;
    }
    if (flags & HAS_CONTEXT) {
      if (at + 4 > end) return undefined;
      const contextEnd = at + 4 + b.readUInt32LE(at);
      if (contextEnd > end) return undefined;
      r.context = b.subarray(at + 4, contextEnd);
      at = contextEnd;
    }
    if (flags & HAS_MAC) {
      if (at + 1 > end) return undefined;
      const macEnd = at + 1 + b[at];
      if (macEnd > end) return undefined;
      r.mac = b.subarray(at + 1, macEnd);
      at = macEnd;
    }
    if (at + 4 > end) return undefined;
    const bodyEnd = at + 4 + b.readUInt32LE(at);
    if (bodyEnd > end) return undefined;
    r.body = b.subarray(at + 4, bodyEnd);
    at = bodyEnd;
    out[i] = r;
  }
  return at === end ? out : undefined;
}

/**
 * Whether `bytes` start like a request packet (its magic and version): a reader that also
 * accepts another entry format tells them apart with it.
 *
 * @example
 * ```ts
 * if (isRequestPacket(body)) requests = decodeRequestPacket(body);
 * ```
 */
export function isRequestPacket(bytes: Uint8Array): boolean {
  return bytes.byteLength >= HEADER_BYTES && bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1 && bytes[2] === VERSION;
}

function copyLong(out: Buffer, at: number, bytes: Uint8Array): number {
  out.writeUInt32LE(bytes.byteLength, at);
  out.set(bytes, at + 4);
  return at + 4 + bytes.byteLength;
}

const EMPTY = new Uint8Array(0);
/** 'r' 'q', then the format's version. */
const MAGIC_0 = 0x72;
const MAGIC_1 = 0x71;
const VERSION = 1;
const HEADER_BYTES = 7;
/** flags, earlier, id length, body length. */
const FIXED_BYTES = 8;
const MAX_SHORT = 0xffff;
const MAX_MAC = 0xff;
const MAX_EARLIER = 0xff;
const SAME_REPLY_TO = 1;
const HAS_DEADLINE = 2;
const HAS_PRIORITY = 4;
const HAS_CONTEXT = 8;
const HAS_MAC = 16;
const KNOWN_FLAGS = SAME_REPLY_TO | HAS_DEADLINE | HAS_PRIORITY | HAS_CONTEXT | HAS_MAC;
