import type { MsgHdrs } from '@nats-io/transport-node';
import type { RequestMessage } from '../remote/transport.js';

export const ID_HEADER = 'Rxb-Id';
export const REPLY_HEADER = 'Rxb-Reply';
export const DEADLINE_HEADER = 'Rxb-Deadline';
/** The codec-encoded `context` of the call, base64 (headers carry text). */
export const CONTEXT_HEADER = 'Rxb-Context';
/** The call's priority, when not 0. */
export const PRIORITY_HEADER = 'Rxb-Priority';
/** The request's signature, base64, when producers sign (`auth`). */
export const MAC_HEADER = 'Rxb-Mac';
/** JetStream drops a second message with the same id within the stream's duplicate window. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/**
 * A NATS header block, written once as bytes. Publishing calls nothing on headers
 * but `encode()`; the client's own `headers()` object validates and canonicalises each key on
 * every `set` and writes the block anew on every publish, which cost more CPU per request than
 * anything else on the producer. A retry publishes the same block again.
 */
class EncodedHeaders {
  constructor(private readonly bytes: Uint8Array) {}

  encode(): Uint8Array {
    return this.bytes;
  }
}

/**
 * The headers a request travelled with, one JetStream message per request, before producers
 * packed a tick of requests into one message ({@link packetHeaders}); workers still read such
 * messages (a rolling upgrade), and tests write them. The headers: its id, reply address and, when given, deadline,
 * context, priority and signature; and `Nats-Msg-Id` when `msgID` is given. Every value is
 * ASCII (ids, inbox names, numbers, base64), so no value can break the block.
 *
 * @example
 * ```ts
 * nc.publish(subject, message.body, { headers: requestHeaders(message, message.id) });
 * ```
 */
export function requestHeaders(message: RequestMessage, msgID: string | undefined): MsgHdrs {
  let s = `NATS/1.0\r\n${ID_HEADER}: ${message.id}\r\n${REPLY_HEADER}: ${message.replyTo}\r\n`;
  if (message.deadline !== undefined) s += `${DEADLINE_HEADER}: ${message.deadline}\r\n`;
  if (message.context !== undefined) s += `${CONTEXT_HEADER}: ${base64(message.context)}\r\n`;
  if (message.priority !== undefined) s += `${PRIORITY_HEADER}: ${message.priority}\r\n`;
  if (message.mac !== undefined) s += `${MAC_HEADER}: ${base64(message.mac)}\r\n`;
  if (msgID !== undefined) s += `${MSG_ID_HEADER}: ${msgID}\r\n`;
  // The client calls only encode() on the headers of a message it publishes.
  return new EncodedHeaders(Buffer.from(`${s}\r\n`)) as unknown as MsgHdrs;
}

/**
 * The header block of a packet of requests ({@link encodeRequestPacket}): only `Nats-Msg-Id`
 * (everything else travels in the body). A retry publishes the same block again.
 *
 * @example
 * ```ts
 * nc.publish(subject, encodeRequestPacket(messages), { headers: packetHeaders(`${messages[0].id}/${messages.length}`) });
 * ```
 */
export function packetHeaders(msgID: string): MsgHdrs {
  return new EncodedHeaders(Buffer.from(`NATS/1.0\r\n${MSG_ID_HEADER}: ${msgID}\r\n\r\n`)) as unknown as MsgHdrs;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** What a worker reads from a request's headers (absent fields were not sent). */
export interface RequestFields {
  id: string;
  replyTo: string;
  deadline?: string;
  context?: string;
  priority?: string;
  mac?: string;
}

/** The parts of the client's message object that hold the raw header block (`@nats-io/nats-core` 3.x). */
interface RawMsg {
  readonly _rdata?: Uint8Array;
  readonly _msg?: { readonly hdr?: number };
}

/**
 * A request's fields from its header block, read in one pass. The client's `msg.headers`
 * decodes the block into a map (validating and canonicalising every key) and each `get`
 * searches it again; this reads the raw block when the client's message object exposes it
 * (`_rdata`, `_msg.hdr`), and falls back to `msg.headers` otherwise.
 *
 * @example
 * ```ts
 * const { id, replyTo, deadline } = requestFields(msg);
 * ```
 */
export function requestFields(msg: { readonly headers?: MsgHdrs }): RequestFields {
  const raw = msg as RawMsg;
  const hdr = raw._msg?.hdr;
  if (raw._rdata instanceof Uint8Array && typeof hdr === 'number' && hdr > 0) {
    const block = Buffer.from(raw._rdata.buffer, raw._rdata.byteOffset, hdr).toString('latin1');
    const fields: RequestFields = { id: '', replyTo: '' };
    let at = block.indexOf('\r\n') + 2;
    while (at > 1 && at < block.length) {
      const end = block.indexOf('\r\n', at);
      const line = end === -1 ? block.slice(at) : block.slice(at, end);
      const colon = line.indexOf(':');
      if (colon > 0) {
        const value = line.slice(colon + 1).trim();
        switch (line.slice(0, colon)) {
          case ID_HEADER: fields.id = value; break;
          case REPLY_HEADER: fields.replyTo = value; break;
          case DEADLINE_HEADER: fields.deadline = value; break;
          case CONTEXT_HEADER: fields.context = value; break;
          case PRIORITY_HEADER: fields.priority = value; break;
          case MAC_HEADER: fields.mac = value; break;
        }
      }
      if (end === -1) break;
      at = end + 2;
    }
    return fields;
  }
  const h = msg.headers;
  const get = (key: string): string | undefined => h?.get(key) || undefined;
  return { id: h?.get(ID_HEADER) ?? '', replyTo: h?.get(REPLY_HEADER) ?? '', deadline: get(DEADLINE_HEADER), context: get(CONTEXT_HEADER), priority: get(PRIORITY_HEADER), mac: get(MAC_HEADER) };
}
