import type { PackedRequest } from '../remote/requestPacket.js';
import { decodeRequestPacket, isRequestPacket } from '../remote/requestPacket.js';

/**
 * The field of a stream entry that holds a request packet (a producer's tick of requests,
 * `encodeRequestPacket`). Every entry a producer of this version writes is `q <packet>`.
 *
 * @example
 * ```ts
 * await redis.xadd('rxb:scorer', '*', PACKET_FIELD, Buffer.from(encodeRequestPacket(messages)));
 * ```
 */
export const PACKET_FIELD = 'q';

/**
 * The requests of one stream entry, from its raw fields: the requests of its packet (field
 * `q`), or, for an entry of the earlier format (one request per entry: i(d), r(eply to),
 * d(eadline), c(ontext), p(riority), m(ac), b(ody), written by producers before packets), that
 * one request. An entry that is neither (a packet that does not decode, fields of no known
 * kind) is one request with an empty id and reply address, its packet as body: a signing
 * worker drops it as forged, another answers it with a decode error to nobody; either way it
 * is acknowledged, never run.
 *
 * @example
 * ```ts
 * const requests = entryRequests(fields); // fields as XREADGROUP gives them (Buffers)
 * ```
 */
export function entryRequests(fields: readonly Buffer[]): PackedRequest[] {
  let id = '';
  let replyTo = '';
  let body: Uint8Array = EMPTY;
  let deadline: number | undefined;
  let context: Uint8Array | undefined;
  let priority: number | undefined;
  let mac: Uint8Array | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    // Field names are one letter: compare the byte, not a decoded string.
    const name = fields[i];
    const f = name.length === 1 ? name[0] : 0;
    if (f === FIELD_Q) return decodeRequestPacket(fields[i + 1]) ?? [{ id: '', replyTo: '', body: fields[i + 1], earlier: 0 }];
    if (f === FIELD_I) id = fields[i + 1].toString();
    else if (f === FIELD_R) replyTo = fields[i + 1].toString();
    else if (f === FIELD_B) body = fields[i + 1];
    else if (f === FIELD_D) deadline = Number(fields[i + 1].toString());
    else if (f === FIELD_C) context = fields[i + 1];
    else if (f === FIELD_P) priority = Number(fields[i + 1].toString());
    else if (f === FIELD_M) mac = fields[i + 1];
  }
  const request: { -readonly [K in keyof PackedRequest]: PackedRequest[K] } = { id, replyTo, body, earlier: 0 };
  if (deadline !== undefined) request.deadline = deadline;
  if (context !== undefined) request.context = context;
  if (priority !== undefined) request.priority = priority;
  if (mac !== undefined) request.mac = mac;
  return [request];
}

/**
 * How many requests a stream entry holds, from its raw fields, without decoding its packet:
 * the count in the packet's header (bounded by what its length can hold), 1 for any other entry.
 *
 * @example
 * ```ts
 * const waiting = entries.reduce((n, [, fields]) => n + entryRequestCount(fields), 0);
 * ```
 */
export function entryRequestCount(fields: readonly Buffer[]): number {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name.length !== 1 || name[0] !== FIELD_Q) continue;
    const packet = fields[i + 1];
    if (!isRequestPacket(packet)) return 1;
    return Math.max(1, Math.min(packet.readUInt32LE(3), Math.floor((packet.length - PACKET_HEADER_BYTES) / PACKET_REQUEST_BYTES)));
  }
  return 1;
}

/**
 * The bytes as a Buffer, without a copy.
 *
 * @example
 * ```ts
 * connection.publish(channel, toBuffer(frame));
 * ```
 */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const EMPTY = new Uint8Array(0);
/** A packet's header (magic, version, count) and the least bytes one request of it takes. */
const PACKET_HEADER_BYTES = 7;
const PACKET_REQUEST_BYTES = 8;
const [FIELD_Q, FIELD_I, FIELD_R, FIELD_B, FIELD_D, FIELD_C, FIELD_P, FIELD_M] = Array.from('qirbdcpm', (c) => c.charCodeAt(0));
