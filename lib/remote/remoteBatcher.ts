import { randomBytes } from 'node:crypto';
import type { Observable, SchedulerLike } from 'rxjs';
import { Batcher } from '../batcher/Batcher.js';
import type { BatchConfig } from '../core/config.js';
import { CALLER_GONE, type LateResult } from '../core/lateResult.js';
import { BatchResultError } from '../errors/index.js';
import { prefix } from '../errors/describe.js';
import { PREBUILT_CONFIG, reconfigured, type Prebuilt } from '../options/normalizeOptions.js';
import { producerOptions } from './remoteOptions.js';
import type { BatcherStats } from '../stats/statsSnapshot.js';
import type { BatchContext, BatcherOptions, RunBatch, StopOptions } from '../types.js';
import type { AuthOptions } from './auth.js';
import { ConnectionCounts, emitBrokerEvent, type BrokerEvent, type LinkEvent } from './brokerEvents.js';
import type { Codec } from './codec.js';
import { DroppedMessageError } from './DroppedMessageError.js';
import { Outbox } from './outbox.js';
import { RemoteBatchError } from './RemoteBatchError.js';
import type { ProducerRules } from './remoteOptions.js';
import type { BatchTransport, ProducerLink, RequestMessage } from './transport.js';
import { decodeReplies, type WireReply } from './wire.js';

/**
 * Options of {@link remoteBatcher}: the request lifecycle options of `Batcher`, with the same
 * meaning, plus the codec, signing and a payload limit.
 *
 * @example
 * ```ts
 * const options: RemoteBatcherOptions<{ id: string }> = { timeoutMs: 2000, maxQueueSize: 10_000, dedupeBy: (q) => q.id };
 * ```
 */
export interface RemoteBatcherOptions<I = unknown> {
  /** Names the batcher in error messages and stats. @default the subject */
  readonly name?: string;
  /** Per-request deadline in ms from `run()`; `run(x, { timeoutMs })` overrides it. Travels with the request. @default Infinity */
  readonly timeoutMs?: number;
  /**
   * Requests waiting for an answer (sent and not settled); beyond it `run()` rejects at once
   * with `QueueFullError`. The producer's queue is the broker, so running requests count too.
   * @default Infinity
   */
  readonly maxQueueSize?: number;
  /**
   * Identical inputs (equal keys) waiting for an answer share one request to the broker and
   * its one reply, as `Batcher`'s `dedupeBy`: each caller still settles on its own, and
   * `stats().merged` counts the calls that joined. A worker's own `dedupeBy` merges what it
   * pulls from every producer. @default no dedupe
   */
  readonly dedupeBy?: (input: I) => string | number;
  /** Must match the workers' codec. @default v8Codec */
  readonly codec?: Codec;
  /** Times deadlines and sends (pass a `TestScheduler` to test in virtual time). @default asyncScheduler */
  readonly scheduler?: SchedulerLike;
  /**
   * Sign every request and accept only replies signed with one of these keys (HMAC-SHA-256);
   * workers need the same keys. A reply that does not verify is dropped (counted in `forged`)
   * and its caller keeps waiting for the real one. @default off
   */
  readonly auth?: AuthOptions;
  /**
   * The largest encoded input (with its context) `run()` sends, and the largest reply frame
   * it decodes; beyond it `run()` rejects with a `RemoteBatchError` of kind
   * `'payload-too-large'` and a reply frame is dropped unread (counted in `oversized`). Give
   * workers the same limit. @default Infinity
   */
  readonly maxPayloadBytes?: number;
  /** Called with every reply frame dropped (a {@link DroppedMessageError}). @default console.warn */
  readonly onError?: (error: Error) => void;
  /**
   * Called when a connection to the broker drops, comes back, and when the reply subscription
   * is live again (with how many requests were re-sent because their reply may have been
   * lost meanwhile). The transport reconnects on its own; this is for logs and alerts.
   * @default none (counted in `stats()` only)
   */
  readonly onBrokerEvent?: (event: BrokerEvent) => void;
}

/**
 * A producer's stats: the {@link BatcherStats} of its engine (`inFlight`: sent and waiting for
 * a reply; `batches`: its batches, one per tick; those of one event-loop turn leave in one
 * pipelined send), plus replies it dropped.
 *
 * @example
 * ```ts
 * const { inFlight, duplicatesDropped } = scorer.stats();
 * ```
 */
export interface RemoteBatcherStats extends BatcherStats {
  /** Replies for requests already settled (a redelivered request answered twice, or a reply after its deadline or abort), dropped. */
  readonly duplicatesDropped: number;
  /** Reply frames dropped because signing is on (`auth`) and their signature was missing or did not verify. */
  readonly forged: number;
  /** Reply frames dropped unread because they were over `maxPayloadBytes`. */
  readonly oversized: number;
  /** Reply frames dropped because they were not reply frames (garbage, or cut short). */
  readonly malformed: number;
  /** Connections to the broker that dropped (each reconnects on its own). */
  readonly disconnects: number;
  /** Connections to the broker that came back. */
  readonly reconnects: number;
  /** Times the reply subscription came back after a drop. */
  readonly resubscribes: number;
  /** Requests sent again after a resubscribe, because their reply may have been published while the producer could not hear it. */
  readonly resent: number;
}

/**
 * The producer face of a remote batcher: a `Batcher` whose batches run in the workers. Same
 * `run`, `run$`, `flush`, `stop`, `results$`, `stats$` and errors as the local one.
 *
 * @example
 * ```ts
 * const scores = await scorer.run(features, { signal, timeoutMs: 500 });
 * ```
 */
export interface RemoteBatcher<I, O> extends Batcher<I, O> {
  /** The current stats, as an immutable snapshot. */
  stats(): RemoteBatcherStats;
  /** The current stats on subscription, then a new snapshot after every change (connection events and dropped replies included). */
  readonly stats$: Observable<RemoteBatcherStats>;
}

/**
 * Sends single calls to a pool of workers ({@link serveBatches}) through a broker and routes
 * each answer back to its caller. Workers pull full batches from the shared stream, so a
 * cluster batches as well as one process does.
 *
 * It is a `Batcher` on the same engine: requests issued in one turn of the event loop leave in
 * one pipelined send at the end of that turn (a caller that yields once still joins), and the request lifecycle is the local one: the same per-call options,
 * `QueueFullError` (`maxQueueSize` requests waiting for an answer), `RequestTimeoutError`
 * (phase `'running'`: the request may have reached a worker), `BatcherStoppedError` and
 * `signal.reason`. Worker failures arrive as {@link RemoteBatchError} (or `BatchResultError`
 * when the worker's `runBatch` returned the wrong number of results). Each request settles
 * exactly once; duplicate and late replies are dropped. Each request carries its deadline, so
 * workers skip requests nobody waits for.
 *
 * @example
 * ```ts
 * import { redisTransport } from 'rx-batcher/redis';
 * import { remoteBatcher } from 'rx-batcher/remote';
 * const scorer = remoteBatcher<Features, Scores>(redisTransport({ url }), 'scorer', {
 *   timeoutMs: 2000, maxQueueSize: 10_000,
 * });
 * const scores = await scorer.run(features, { signal });
 * await scorer.stop({ drain: true });
 * ```
 */
export function remoteBatcher<I, O>(transport: BatchTransport, subject: string, options: RemoteBatcherOptions<I> = {}): RemoteBatcher<I, O> {
  const sender = new Sender<I, O>(transport, subject);
  const send: RunBatch<I, O> = (inputs, ctx) => sender.send(inputs, ctx);
  const { config, rules, face } = producerOptions<I, O>(subject, options, send);
  sender.open(config, rules);
  const rebuild = (changes: unknown): BatchConfig<I, O> => reconfigured<I, O>(config.name, options as Record<string, unknown>, changes, send, face);
  const notifyStats = (changed: () => void): void => {
    sender.statsChanged = changed;
  };
  return new Producer<I, O>({ config, rebuild, notifyStats }, sender);
}

/** The producer as a Batcher: its `runBatch` is the broker. */
class Producer<I, O> extends Batcher<I, O> implements RemoteBatcher<I, O> {
  declare readonly stats$: Observable<RemoteBatcherStats>;
  readonly #sender: Sender<I, O>;
  #closing: Promise<void> | undefined;

  constructor(prebuilt: Prebuilt<I, O>, sender: Sender<I, O>) {
    super({ [PREBUILT_CONFIG]: prebuilt } as unknown as BatcherOptions<I, O>);
    this.#sender = sender;
  }

  override stats(): RemoteBatcherStats {
    const s = this.#sender;
    const c = s.connections;
    return Object.freeze({
      ...super.stats(), duplicatesDropped: s.duplicatesDropped, forged: s.forged, oversized: s.oversized, malformed: s.malformed,
      disconnects: c.disconnects, reconnects: c.reconnects, resubscribes: c.resubscribes, resent: s.resent,
    });
  }

  override stop(options?: StopOptions): Promise<void> {
    const stopped = super.stop(options);
    // Bad options reject and leave the producer running; otherwise close once nothing waits.
    return stopped.then(() => (this.#closing ??= this.#sender.close()));
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A request sent and waiting for its reply. */
interface Waiting {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  /** What was sent, kept to send it again if its reply may have been lost. */
  message?: RequestMessage;
}

/** Sends batches to the broker and matches replies to the requests waiting for them. */
class Sender<I, O> {
  duplicatesDropped = 0;
  forged = 0;
  oversized = 0;
  malformed = 0;
  resent = 0;
  readonly connections = new ConnectionCounts();
  /** Makes the producer's `stats$` emit: the counts above change outside the engine. */
  statsChanged: () => void = () => undefined;
  private name = '';
  private codec!: Codec;
  private rules!: ProducerRules;
  private link!: Promise<ProducerLink>;
  /** The link's reply address, once it is open. */
  private replyTo = '';
  private readonly waiting = new Map<string, Waiting>();
  /** What this turn's sends hold, written together (callers coming back over one turn share a round trip). */
  private readonly outbox = new Outbox<Mutable<RequestMessage>>((messages) => this.write(messages));
  private readonly idPrefix = randomBytes(6).toString('base64url') + '.';
  private sequence = 0;

  constructor(
    private readonly transport: BatchTransport,
    private readonly subject: string,
  ) {}

  open(config: BatchConfig<I, O>, rules: ProducerRules): void {
    this.name = config.name;
    this.codec = rules.codec;
    this.rules = rules;
    this.link = this.transport.openProducer(this.subject, (frame) => this.onFrame(frame), (event) => this.onLinkEvent(event));
    this.link.then((l) => (this.replyTo = l.replyTo), () => undefined);
    // Opening failures surface on each send; keep an unobserved rejection from crashing the process.
    this.link.catch(() => undefined);
  }

  /**
   * The producer's `runBatch`: encodes each input, sends them all in one pipelined call, and
   * returns one promise per input (a late result): each caller settles when its reply arrives.
   */
  send(inputs: readonly I[], ctx: BatchContext): LateResult<O>[] {
    const deadlines = ctx.deadlines;
    const contexts = ctx.contexts;
    const priorities = ctx.priorities;
    const slots = new Array<LateResult<O>>(inputs.length);
    const maxPayloadBytes = this.rules.maxPayloadBytes;
    const messages: Mutable<RequestMessage>[] = [];
    const ids: string[] = [];
    for (let i = 0; i < inputs.length; i++) {
      let body: Uint8Array;
      let context: Uint8Array | undefined;
      try {
        body = this.codec.encode(inputs[i]);
      } catch (error) {
        slots[i] = Promise.reject(new TypeError(`${prefix(this.name)} the codec could not encode this input: ${error instanceof Error ? error.message : String(error)}`));
        continue;
      }
      if (contexts[i] !== undefined) {
        try {
          context = this.codec.encode(contexts[i]);
        } catch (error) {
          slots[i] = Promise.reject(new TypeError(`${prefix(this.name)} the codec could not encode this call's \`context\`: ${error instanceof Error ? error.message : String(error)}`));
          continue;
        }
      }
      const bytes = body.byteLength + (context === undefined ? 0 : context.byteLength);
      if (bytes > maxPayloadBytes) {
        slots[i] = Promise.reject(new RemoteBatchError(this.name, 'payload-too-large', 'PayloadTooLarge',
          `this input${context === undefined ? '' : ' with its context'} encodes to ${bytes} bytes, over maxPayloadBytes (${maxPayloadBytes}); it was not sent`));
        continue;
      }
      const id = this.idPrefix + (++this.sequence).toString(36);
      let waiting!: Waiting;
      const slot = new Promise<O>((resolve, reject) => this.waiting.set(id, (waiting = { resolve: resolve as (v: unknown) => void, reject }))) as LateResult<O>;
      slot[CALLER_GONE] = () => this.forget(id);
      slots[i] = slot;
      ids.push(id);
      const deadline = deadlines[i];
      const message: Mutable<RequestMessage> = { id, replyTo: this.replyTo, body };
      if (deadline !== Infinity) message.deadline = deadline;
      if (context !== undefined) message.context = context;
      if (priorities[i] !== 0) message.priority = priorities[i];
      waiting.message = message;
      messages.push(message);
    }
    // A non-draining stop aborts the batch: its callers get the stop's reason, not a late reply.
    ctx.signal.addEventListener('abort', () => {
      for (const id of ids) this.fail(id, ctx.signal.reason);
    }, { once: true });
    if (messages.length > 0) this.outbox.add(messages);
    return slots;
  }

  /** Writes one turn's messages (see Outbox) in one send; if it fails, their callers get a `send-failed` error. */
  private write(messages: Mutable<RequestMessage>[]): void {
    this.link.then((link) => {
      const signer = this.rules.signer;
      if (signer !== undefined) {
        // Signed once the reply address is known: it is part of what the MAC covers.
        for (const m of messages) {
          m.replyTo = link.replyTo;
          m.mac = signer.signRequest(this.subject, m);
        }
      } else {
        for (const m of messages) if (m.replyTo === '') m.replyTo = link.replyTo;
      }
      return link.send(messages);
    }).catch((error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      for (const m of messages) this.fail(m.id, new RemoteBatchError(this.name, 'send-failed', e.name, e.message, e.stack));
    });
  }

  close(): Promise<void> {
    return this.link.then((l) => l.close(), () => undefined);
  }

  /**
   * A connection dropped or came back: counted and reported. When the reply subscription is
   * back, replies published while it was down are lost: send again every request still
   * waiting that may have been answered meanwhile (the transport skips those no worker has
   * read yet); a second answer is dropped by id.
   */
  private onLinkEvent(event: LinkEvent): void {
    this.connections.count(event);
    this.statsChanged();
    const report = (resent?: number): void =>
      emitBrokerEvent(this.rules.onBrokerEvent, { ...event, transport: this.transport.kind, subject: this.subject, ...(resent !== undefined ? { resent } : {}) });
    if (event.type !== 'resubscribed') return report();
    const messages: RequestMessage[] = [];
    for (const w of this.waiting.values()) if (w.message !== undefined && w.message.replyTo !== '') messages.push(w.message);
    if (messages.length === 0) return report(0);
    this.link
      .then((link) => (link.resend !== undefined ? link.resend(messages) : link.send(messages).then(() => messages.length)))
      .then((n) => {
        this.resent += n;
        if (n > 0) this.statsChanged();
        report(n);
      }, () => report(0)); // dropped again before it was through: the next resubscribe re-sends
  }

  /** A frame from the broker: bounded, then authenticated, then decoded; anything else is dropped and reported. */
  private onFrame(frame: Uint8Array): void {
    const rules = this.rules;
    const bytes = frame.byteLength;
    if (bytes > rules.maxPayloadBytes) {
      this.oversized++;
      return this.dropped('oversized', bytes, `dropped a reply frame of ${bytes} bytes, over maxPayloadBytes (${rules.maxPayloadBytes}), without decoding it; its callers wait until their deadline. Give the workers the same maxPayloadBytes: they answer a result over it with an error instead.`);
    }
    let payload = frame;
    if (rules.signer !== undefined) {
      const opened = rules.signer.openFrame(this.subject, this.replyTo, frame);
      if (opened === undefined) {
        this.forged++;
        return this.dropped('forged', bytes, `dropped a reply frame of ${bytes} bytes whose signature is missing or does not verify with any of the ${rules.signer.keyCount} keys in \`auth.keys\`; its callers keep waiting for the real reply. A client without the key published to this producer's reply address, or the workers have other keys (or none).`);
      }
      payload = opened;
    }
    const replies = decodeReplies(payload);
    if (replies === undefined) {
      this.malformed++;
      return this.dropped('malformed', bytes, `dropped a reply frame of ${bytes} bytes that is not one (garbage, or cut short); its callers keep waiting for the real reply.`);
    }
    for (const reply of replies) this.onReply(reply);
  }

  private dropped(reason: 'forged' | 'oversized' | 'malformed', bytes: number, message: string): void {
    this.statsChanged();
    try {
      this.rules.onError(new DroppedMessageError(this.name, reason, bytes, message));
    } catch {
      // a throwing error handler must not break the reply path
    }
  }

  private onReply(reply: WireReply): void {
    const id = reply[0];
    const w = this.waiting.get(id);
    if (w === undefined) {
      this.duplicatesDropped++;
      this.statsChanged();
      return;
    }
    this.waiting.delete(id);
    if (reply[1] === 'ok') {
      let value: unknown;
      try {
        value = this.codec.decode(reply[2]);
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        return w.reject(new RemoteBatchError(this.name, 'decode-failed', e.name, `decoding the result: ${e.message}`));
      }
      w.resolve(value);
    } else if (reply[1] === 'error') {
      const x = reply[2];
      w.reject(new RemoteBatchError(this.name, x.kind, x.name, x.message, x.stack));
    } else {
      w.reject(new BatchResultError(this.name, reply[2].expected, reply[2].actual));
    }
  }

  private fail(id: string, reason: unknown): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    w.reject(reason);
  }

  /** The caller settled first (aborted, timed out): a late reply will be counted as dropped. */
  private forget(id: string): void {
    this.waiting.delete(id);
  }
}
