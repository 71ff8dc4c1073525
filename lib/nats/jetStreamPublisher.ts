import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type PublishOptions, type Subscription } from '@nats-io/transport-node';
import { isTransient } from './transientError.js';

/**
 * Why a publish to JetStream failed: `'timeout'` (no acknowledgement in time), `'no-responders'`
 * (no stream listens on the subject: JetStream is down, starting, or the stream was deleted),
 * `'refused'` (JetStream answered with an error) or `'closed'` (the link was closed first).
 *
 * @example
 * ```ts
 * if (error instanceof JetStreamPublishError && error.reason === 'refused') console.error(error.message);
 * ```
 */
export class JetStreamPublishError extends Error {
  constructor(
    readonly reason: 'timeout' | 'no-responders' | 'refused' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'JetStreamPublishError';
  }
}

/**
 * Options of {@link JetStreamPublisher}.
 *
 * @example
 * ```ts
 * const options: JetStreamPublisherOptions = { ackTimeoutMs: 5000, maxRetries: 8 };
 * ```
 */
export interface JetStreamPublisherOptions {
  /** How long a publish waits for JetStream's acknowledgement before it is retried. @default 5000 */
  readonly ackTimeoutMs?: number;
  /** Retries of a publish that failed for a transient reason (a timeout, no responders, a restart) before it fails. @default 8 */
  readonly maxRetries?: number;
  /** Inbox prefix of the acknowledgements (a user confined by permissions may subscribe only below it). @default '_INBOX' */
  readonly inboxPrefix?: string;
}

/** One message to publish (the NATS producer's: a packet of requests): `key` identifies it to `onStored`. */
export interface Publication<K> {
  readonly key: K;
  readonly body: Uint8Array;
  /** Must carry `Nats-Msg-Id`: a retry publishes the same headers, and JetStream drops the copy. */
  readonly headers: MsgHdrs;
}

/** The messages of one `publish` call: its promise settles once, when all are stored or one fails. */
interface Batch {
  left: number;
  settled: boolean;
  resolve(): void;
  reject(reason: unknown): void;
}

/** A message waiting for its acknowledgement, or for its next attempt. */
interface Pending<K> {
  /** Its number: the last token of its reply subject. */
  readonly n: number;
  readonly key: K;
  readonly body: Uint8Array;
  readonly options: PublishOptions;
  readonly batch: Batch;
  retries: number;
  /** When to act: the acknowledgement's deadline while published, the end of the back-off while waiting to retry. */
  due: number;
  /** Waiting out a back-off after a failed attempt, not published again yet. */
  backingOff: boolean;
  lastError?: unknown;
}

/**
 * Publishes messages to a JetStream stream and matches its acknowledgements (PubAcks) itself:
 * one subscription on an inbox of its own, each message published with the reply subject
 * `<inbox>.<n>`, and one timer for all of them (not a request, a promise and a timer per
 * message, as `js.publish` makes). A message not acknowledged within `ackTimeoutMs`, or
 * refused for a transient reason, is published again with the same headers after a back-off
 * (50 ms, doubling, at most 1 s) up to `maxRetries` times: its `Nats-Msg-Id` makes the retry
 * idempotent. After a reconnect, call `republish()`: what the client had buffered meanwhile
 * is lost, so every message still unacknowledged goes again at once.
 *
 * @example
 * ```ts
 * const publisher = new JetStreamPublisher(nc, 'rxb.scorer', (packet: RequestMessage[], seq) => console.log(packet.length, 'requests stored at', seq));
 * await publisher.publish([{ key: messages, body: encodeRequestPacket(messages), headers: packetHeaders(`${messages[0].id}/${messages.length}`) }]);
 * publisher.close();
 * ```
 */
export class JetStreamPublisher<K> {
  private readonly pending = new Map<number, Pending<K>>();
  private readonly inbox: string;
  private readonly subscription: Subscription;
  private readonly ackTimeoutMs: number;
  private readonly maxRetries: number;
  private sequence = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer fires (Infinity: not armed). */
  private timerAt = Infinity;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly onStored: (key: K, seq: number) => void,
    options: JetStreamPublisherOptions = {},
  ) {
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.maxRetries = options.maxRetries ?? 8;
    this.inbox = `${createInbox(options.inboxPrefix)}.`;
    const at = this.inbox.length;
    this.subscription = nc.subscribe(`${this.inbox}*`, {
      callback: (error, msg) => {
        if (error === null) this.onAck(Number(msg.subject.slice(at)), msg);
      },
    });
  }

  /** Publishes every message; resolves when JetStream stored them all, rejects with the first that finally failed. */
  publish(messages: readonly Publication<K>[]): Promise<void> {
    if (this.closed) return Promise.reject(new JetStreamPublishError('closed', `JetStreamPublisher on ${this.subject}: publish() after close(); open a new link`));
    if (messages.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = { left: messages.length, settled: false, resolve, reject };
      const due = Date.now() + this.ackTimeoutMs;
      for (const m of messages) {
        const n = ++this.sequence;
        const p: Pending<K> = { n, key: m.key, body: m.body, options: { reply: this.inbox + n, headers: m.headers }, batch, retries: 0, due, backingOff: false };
        this.pending.set(n, p);
        this.attempt(p, due);
      }
      this.schedule(due);
    });
  }

  /** After a reconnect: publishes again, at once, every message still waiting for its acknowledgement. */
  republish(): void {
    const due = Date.now() + this.ackTimeoutMs;
    for (const p of this.pending.values()) if (!p.backingOff) this.attempt(p, due);
    if (this.pending.size > 0) this.schedule(due);
  }

  /** Stops at once: every message not yet stored fails (with its last error), nothing is retried. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.subscription.unsubscribe();
    const gone = new JetStreamPublishError('closed', `JetStreamPublisher on ${this.subject}: closed before JetStream acknowledged the message`);
    for (const p of this.pending.values()) this.settle(p, p.lastError ?? gone);
    this.pending.clear();
  }

  private attempt(p: Pending<K>, due: number): void {
    p.backingOff = false;
    p.due = due;
    try {
      this.nc.publish(this.subject, p.body, p.options);
    } catch (error) {
      this.failed(p, error); // closed or draining connection, oversized payload
    }
  }

  private onAck(n: number, msg: Msg): void {
    const p = this.pending.get(n);
    if (p === undefined) return; // acknowledged already (a retry's copy), or failed
    const data = msg.data;
    if (data.length === 0) {
      // A status: 503 when no stream listens on the subject.
      const code = msg.headers?.code ?? 0;
      return this.failed(p, code === 503
        ? new JetStreamPublishError('no-responders', `no responders on ${this.subject} (503): JetStream is not enabled, still starting, or the stream is missing`)
        : new JetStreamPublishError('refused', `JetStream answered a publish on ${this.subject} with status ${code} ${msg.headers?.description ?? ''}`));
    }
    const seq = storedSeq(data);
    if (seq > 0) return this.stored(p, seq);
    let ack: { seq?: number; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString()) as typeof ack;
    } catch {
      return this.failed(p, new JetStreamPublishError('refused', `JetStream answered a publish on ${this.subject} with something other than JSON`));
    }
    if (ack.error !== undefined) {
      const e = ack.error;
      return this.failed(p, new JetStreamPublishError('refused', `JetStream refused a publish on ${this.subject}: ${e.description} (status ${e.code}, err_code ${e.err_code})`));
    }
    if (typeof ack.seq !== 'number') return this.failed(p, new JetStreamPublishError('refused', `JetStream answered a publish on ${this.subject} without a sequence`));
    this.stored(p, ack.seq);
  }

  private stored(p: Pending<K>, seq: number): void {
    this.pending.delete(p.n);
    this.onStored(p.key, seq);
    const batch = p.batch;
    if (--batch.left === 0 && !batch.settled) {
      batch.settled = true;
      batch.resolve();
    }
  }

  /** One attempt failed: back off and retry while the error is transient and retries are left, else fail the message. */
  private failed(p: Pending<K>, error: unknown): void {
    if (this.closed) return;
    if (p.retries >= this.maxRetries || !isTransient(error)) {
      this.pending.delete(p.n);
      return this.settle(p, error);
    }
    p.lastError = error;
    p.backingOff = true;
    p.due = Date.now() + Math.min(1000, 50 * 2 ** p.retries++);
    this.schedule(p.due);
  }

  private settle(p: Pending<K>, error: unknown): void {
    if (p.batch.settled) return;
    p.batch.settled = true;
    p.batch.reject(error);
  }

  /** Arms the one timer for `at`, unless it fires sooner already. */
  private schedule(at: number): void {
    if (at >= this.timerAt || this.closed) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - Date.now()));
  }

  /** Retries what is due, times out what waited too long, and re-arms the timer for the next. */
  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const p of this.pending.values()) {
      if (p.due <= now) {
        if (p.backingOff) this.attempt(p, now + this.ackTimeoutMs);
        else this.failed(p, new JetStreamPublishError('timeout', `JetStream did not acknowledge a publish on ${this.subject} within ${this.ackTimeoutMs} ms (timeout)`));
        if (this.closed) return;
      }
      if (p.due < next && this.pending.has(p.n)) next = p.due;
    }
    if (next !== Infinity) this.schedule(next);
  }
}

const ACK_START = Buffer.from('{"stream":');
const SEQ_KEY = Buffer.from('"seq":');

/**
 * The sequence of a PubAck that stored the message, read without decoding it as JSON (the
 * server writes `{"stream":"…","seq":N` first; ` "duplicate":true` may follow); 0 for anything
 * else (an error, another layout), which then goes through JSON.parse.
 *
 * @example
 * ```ts
 * storedSeq(new TextEncoder().encode('{"stream":"rxb_a","seq":7}')); // 7
 * ```
 */
export function storedSeq(data: Uint8Array): number {
  if (data.length < 20 || data[0] !== 0x7b || data[2] !== 0x73) return 0;
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.compare(ACK_START, 0, ACK_START.length, 0, ACK_START.length) !== 0) return 0;
  const at = bytes.indexOf(SEQ_KEY, ACK_START.length);
  if (at === -1) return 0;
  let seq = 0;
  let i = at + SEQ_KEY.length;
  for (; i < bytes.length && bytes[i] >= 0x30 && bytes[i] <= 0x39; i++) seq = seq * 10 + (bytes[i] - 0x30);
  return bytes[i] === 0x2c || bytes[i] === 0x7d ? seq : 0;
}
