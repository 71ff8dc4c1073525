import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { RequestMessage } from './transport.js';

/**
 * Signs requests and replies with shared secret keys (HMAC-SHA-256), so only holders of a
 * key can speak for producers and workers of a subject. The first key signs; every key listed
 * verifies (and a worker answers with the key the request was signed with), so keys can be
 * rotated without downtime: add the new key second everywhere, then move it first, then drop
 * the old one.
 *
 * @example
 * ```ts
 * const auth: AuthOptions = { keys: [process.env.RXB_KEY!, process.env.RXB_PREVIOUS_KEY!] };
 * const scorer = remoteBatcher(transport, 'scorer', { auth });
 * const worker = await serveBatches(transport, 'scorer', runBatch, { maxBatchSize: 32, auth });
 * ```
 */
export interface AuthOptions {
  /**
   * Secret keys of at least 32 bytes each (a string counts its UTF-8 bytes): the current one
   * first (it signs), then previous ones (still accepted).
   */
  readonly keys: readonly (string | Uint8Array)[];
}

/** The length of a MAC: HMAC-SHA-256. */
export const MAC_BYTES = 32;
/** The shortest key accepted: as long as the hash, per RFC 2104's advice. */
export const MIN_KEY_BYTES = 32;

// Domain tags: a request's MAC can never pass for a reply's, nor the other way round.
const REQUEST_TAG = 'rxb.request.1';
const REPLY_TAG = 'rxb.reply.1';

/**
 * Makes and checks MACs for one subject. Requests are signed over subject, id, reply
 * address, deadline, priority, context and body; a reply frame over subject, the producer's
 * reply address and the frame's bytes, which hold every request id it answers, so a reply
 * replayed for another id, another producer or another subject does not verify.
 *
 * @example
 * ```ts
 * const signer = new Signer([createSecretKey(randomBytes(32))]);
 * const mac = signer.signRequest('scorer', message);
 * signer.verifyRequest('scorer', { ...message, mac }); // 0: the first key made it
 * ```
 */
export class Signer {
  constructor(private readonly keys: readonly KeyObject[]) {}

  /** How many keys verify (for messages). */
  get keyCount(): number {
    return this.keys.length;
  }

  /** The MAC of a request, with the current key. */
  signRequest(subject: string, m: RequestMessage): Uint8Array {
    return requestMac(this.keys[0], subject, m);
  }

  /**
   * Which key made the request's MAC (its index in `keys`), or -1 when none did. The worker
   * answers with that key, so a producer that has not rolled to a new key yet still trusts
   * the answers of workers that have.
   */
  verifyRequest(subject: string, m: RequestMessage): number {
    const mac = m.mac;
    if (mac === undefined || mac.byteLength !== MAC_BYTES) return -1;
    for (let i = 0; i < this.keys.length; i++) if (timingSafeEqual(requestMac(this.keys[i], subject, m), mac)) return i;
    return -1;
  }

  /** A reply frame as sent: the MAC (made with the key at `keyIndex`, the current one by default), then the payload. */
  sealFrame(subject: string, replyTo: string, payload: Uint8Array, keyIndex = 0): Uint8Array {
    const frame = Buffer.allocUnsafe(MAC_BYTES + payload.byteLength);
    replyMac(this.keys[keyIndex], subject, replyTo, payload).copy(frame, 0);
    frame.set(payload, MAC_BYTES);
    return frame;
  }

  /** The payload of a sealed frame whose MAC verifies, or `undefined`. */
  openFrame(subject: string, replyTo: string, frame: Uint8Array): Uint8Array | undefined {
    if (frame.byteLength < MAC_BYTES) return undefined;
    const mac = frame.subarray(0, MAC_BYTES);
    const payload = frame.subarray(MAC_BYTES);
    for (const key of this.keys) if (timingSafeEqual(replyMac(key, subject, replyTo, payload), mac)) return payload;
    return undefined;
  }
}

/** Turns validated keys into a signer. */
export function signerFor(keys: readonly Uint8Array[]): Signer {
  return new Signer(keys.map((k) => createSecretKey(Buffer.from(k))));
}

/*
 * The fields go into the MAC as one JSON array of strings (unambiguous: each is quoted and
 * escaped), which also gives the byte lengths of context and body; then those bytes.
 * Absent fields are '' (a present deadline or priority is never '').
 */
function requestMac(key: KeyObject, subject: string, m: RequestMessage): Buffer {
  const context = m.context;
  const head = JSON.stringify([
    REQUEST_TAG, subject, m.id, m.replyTo,
    m.deadline === undefined ? '' : String(m.deadline),
    m.priority === undefined ? '' : String(m.priority),
    context === undefined ? -1 : context.byteLength,
    m.body.byteLength,
  ]);
  const hmac = createHmac('sha256', key).update(head);
  if (context !== undefined) hmac.update(context);
  return hmac.update(m.body).digest();
}

function replyMac(key: KeyObject, subject: string, replyTo: string, payload: Uint8Array): Buffer {
  return createHmac('sha256', key).update(JSON.stringify([REPLY_TAG, subject, replyTo])).update(payload).digest();
}
