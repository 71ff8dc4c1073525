import type { Observable, SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { BatchEngine } from '../core/batchEngine.js';
import { BATCH_FAILED, EngineRequest, QUEUED, REJECTED, RequestExtras, SUCCEEDED } from '../core/request.js';
import { redeliveryCap } from '../core/redelivery.js';
import { BatchResultError, BatcherStoppedError } from '../errors/index.js';
import { checkStopOptions, reconfigured } from '../options/normalizeOptions.js';
import { workerOptions, type WorkerRules } from './remoteOptions.js';
import { takeSnapshot, type BatcherStats } from '../stats/statsSnapshot.js';
import { StatsFeed } from '../stats/statsFeed.js';
import type { BatchConfig } from '../core/config.js';
import type { BatchMapOptions, ConfigureOptions, RunBatch, StopOptions } from '../types.js';
import type { AuthOptions } from './auth.js';
import type { Codec } from './codec.js';
import { DroppedMessageError } from './DroppedMessageError.js';
import type { BatchTransport, Delivery, ReplyFrame, WorkerLink } from './transport.js';
import { encodeReplies, toWireError, type WireReply } from './wire.js';
import { MAC_BYTES } from './auth.js';
import { ConnectionCounts, emitBrokerEvent, type BrokerEvent } from './brokerEvents.js';

/**
 * Options of {@link serveBatches}: the batching rules of `batchMap` (`maxBatchSize`,
 * `maxDelayMs`, `maxConcurrentBatches`, `partitionBy`, `defaults`, `weigh`, `maxBatchWeight`,
 * `dedupeBy`, `isolateFailures`, `name`, `scheduler`, with the same meaning and defaults) plus
 * what a worker of a shared stream needs. With `dedupeBy`, identical requests the worker holds at once (from any
 * producer) share one input of a batch; each still gets its own reply.
 *
 * @example
 * ```ts
 * const options: ServeBatchesOptions<Features> = { maxBatchSize: 64, maxDelayMs: 2, claimIdleMs: 5000 };
 * ```
 */
export interface ServeBatchesOptions<I = unknown> extends Omit<BatchMapOptions<I>, 'timeoutMs' | 'maxQueueSize'> {
  /**
   * A request delivered and not answered or touched for this long is taken over by another
   * worker. Size it well above your longest batch; group-wide. @default 10000
   */
  readonly claimIdleMs?: number;
  /** How often the worker renews its claim on every request it holds; 0 turns renewal off. @default claimIdleMs / 3 */
  readonly touchEveryMs?: number;
  /**
   * A request is run at most this many times; the next delivery is answered with an error.
   * A redelivered request (its worker crashed or stopped renewing its claim) runs in a smaller
   * batch each time: half of `maxBatchSize` on its second delivery, a quarter on its third, …,
   * alone on its last, so an input that crashes its worker does not exhaust its neighbours'
   * deliveries (see the guide's errors page). @default 5
   */
  readonly maxDeliveries?: number;
  /** Must match the producers' codec. @default v8Codec */
  readonly codec?: Codec;
  /**
   * A request whose caller gave up (its deadline passed) more than this long ago is
   * acknowledged without running: after an outage, workers do not burn the model on a backlog
   * nobody waits for. The slack absorbs clock differences between machines; `Infinity` runs
   * everything. @default 1000
   */
  readonly expiredGraceMs?: number;
  /**
   * Accept only requests signed with one of these keys (HMAC-SHA-256) and sign every reply;
   * producers need the same keys. A request that does not verify is acknowledged without
   * running (counted in `forged`, reported through `onError`). @default off
   */
  readonly auth?: AuthOptions;
  /**
   * The largest request (encoded input with its context) the worker decodes, and the largest
   * reply frame it sends. A request over it is answered with a `RemoteBatchError` of kind
   * `'payload-too-large'` without being decoded or run (counted in `oversized` and `rejected`);
   * so is a caller whose encoded result would not fit. Give producers the same limit. @default Infinity
   */
  readonly maxPayloadBytes?: number;
  /**
   * Called with broker errors the worker recovered from (it retries), and with each request
   * dropped as forged (a {@link DroppedMessageError}). @default console.warn
   */
  readonly onError?: (error: Error) => void;
  /**
   * Called when a connection to the broker drops and when it comes back. The transport
   * reconnects on its own, and the worker carries on: requests it pulled whose delivery was
   * cut short are reclaimed after `claimIdleMs`. For logs and alerts.
   * @default none (counted in `stats()` only)
   */
  readonly onBrokerEvent?: (event: BrokerEvent) => void;
  /**
   * Test hook: awaited after replies were sent and before they are acknowledged (kill the
   * process here to simulate a crash between the two).
   */
  readonly afterReply?: (deliveries: readonly Delivery[]) => void | Promise<void>;
}

/**
 * A worker's stats: the {@link BatcherStats} of its engine (every field means what it means for
 * a `Batcher`: `queued` pulled and waiting for a slot, `inFlight` in a running batch,
 * `rejected` answered with an error without running), plus the broker's side.
 *
 * @example
 * ```ts
 * const { batches, meanBatchSize, reclaimed } = worker.stats();
 * ```
 */
export interface WorkerStats extends BatcherStats {
  /** Requests taken from the stream (including redeliveries). */
  readonly pulled: number;
  /** Of those, taken over from a worker that stopped answering. */
  readonly reclaimed: number;
  /** Of those, delivered before (deliveries > 1). */
  readonly redeliveries: number;
  /** Requests answered with an error without running, after `maxDeliveries` (counted in `rejected` too). */
  readonly exhausted: number;
  /** Requests acknowledged without running because their caller's deadline had passed (`expiredGraceMs`; counted in `rejected` too). */
  readonly expired: number;
  /** Requests handed back unanswered by a non-draining stop. */
  readonly released: number;
  /** Broker errors recovered from. */
  readonly brokerErrors: number;
  /** Requests acknowledged without running because signing is on (`auth`) and their signature was missing or did not verify (not counted in `rejected`: no caller waits for them). */
  readonly forged: number;
  /** Requests over `maxPayloadBytes`, answered with an error without being decoded (counted in `rejected` too). */
  readonly oversized: number;
  /** Connections to the broker that dropped (each reconnects on its own). */
  readonly disconnects: number;
  /** Connections to the broker that came back. */
  readonly reconnects: number;
}

/**
 * A running worker.
 *
 * @example
 * ```ts
 * process.once('SIGTERM', () => worker.stop({ drain: true }));
 * ```
 */
export interface BatchWorker extends AsyncDisposable {
  /** The worker's name, used in errors and stats. */
  readonly name: string;
  /**
   * Stops pulling. With `{ drain: true }` what it holds is run, answered and acknowledged.
   * Without, running batches' `ctx.signal` aborts, and requests not answered are handed back
   * to the group. Resolves when nothing runs and the connections are closed.
   */
  stop(options?: StopOptions): Promise<void>;
  /** The current stats, as an immutable snapshot. */
  stats(): WorkerStats;
  /**
   * The current stats on subscription, then a new snapshot after every change (a batch
   * sealed or finished, a request settled on its own); completes once the worker has stopped.
   *
   * @example
   * ```ts
   * worker.stats$.subscribe(({ lastBatch }) => lastBatch && histogram.observe(lastBatch.durationMs / 1000));
   * ```
   */
  readonly stats$: Observable<WorkerStats>;
  /**
   * Changes the batching rules at run time, like `Batcher.configure()`: `maxBatchSize`,
   * `maxDelayMs`, `maxConcurrentBatches`, `maxBatchWeight`, `agingMs`, `latencyTarget`,
   * `isolateFailures`; it then pulls by the new rules.
   *
   * @example
   * ```ts
   * worker.configure({ maxConcurrentBatches: 2 }); // a second model session came up
   * ```
   */
  configure(options: ConfigureOptions): void;
}

/**
 * Serves a subject: pulls waiting requests from the broker into a batching engine (the same
 * one `Batcher` and `batchMap` run on), runs its batches through `runBatch`, replies to each
 * request's producer, then acknowledges them. Start as many workers as you like, in any
 * number of processes and machines.
 *
 * The engine's rules hold across the broker: a worker pulls only as many requests as its free
 * slots can take (`maxConcurrentBatches` × `maxBatchSize`, less what it already holds),
 * so what it cannot run soon stays in the broker for other workers; a batch is
 * sealed when full, when its first request has waited `maxDelayMs`, or when a slot frees (late
 * sealing). Only while every slot is busy and a backlog waits (its last pull came back full)
 * does it fetch one batch ahead, so the next batch starts the moment a slot frees. `runBatch` is the local `Batcher`'s: one result per input, an `Error` in a slot
 * fails that caller only, throwing fails the batch's callers.
 *
 * @example
 * ```ts
 * import { redisTransport } from 'rx-batcher/redis';
 * import { serveBatches } from 'rx-batcher/remote';
 * const worker = await serveBatches<Features, Scores>(redisTransport({ url }), 'scorer',
 *   (inputs, ctx) => model.predictBatch(inputs, { signal: ctx.signal }),
 *   { maxBatchSize: 64, maxDelayMs: 2 });
 * await worker.stop({ drain: true });
 * ```
 */
export async function serveBatches<I, O>(
  transport: BatchTransport,
  subject: string,
  runBatch: RunBatch<I, O>,
  options: ServeBatchesOptions<I>,
): Promise<BatchWorker> {
  const { config, rules, face } = workerOptions<I, O>(subject, runBatch, options);
  const connections = new ConnectionCounts();
  let worker: Worker<I, O> | undefined;
  const link = await transport.openWorker(subject, {
    claimIdleMs: rules.claimIdleMs, maxDeliveries: rules.maxDeliveries,
    // By the batch size in force when the pull is made.
    redeliveryCap: (deliveries) => redeliveryCap(deliveries, rules.maxDeliveries, worker?.maxBatchSize ?? config.maxBatchSize),
    onEvent: (event) => {
      connections.count(event);
      emitBrokerEvent(rules.onBrokerEvent, { ...event, transport: transport.kind, subject });
      worker?.connectionsChanged();
    },
  });
  const rebuild = (changes: unknown): BatchConfig<I, O> => reconfigured<I, O>(config.name, options as unknown as Record<string, unknown>, changes, runBatch, face);
  return (worker = new Worker<I, O>(link, subject, config, rules, rebuild, connections)).start();
}

/** Why a pulled request was settled without running. */
const EXHAUSTED = 1;
const EXPIRED = 2;
const UNDECODABLE = 3;
const OVERSIZED = 4;

/** A pulled request inside the worker's engine. */
class PulledRequest<I, O> extends EngineRequest<I, O> {
  refusal = 0;
  /** Which of `auth.keys` signed it: its reply is signed with the same one. */
  keyIndex = 0;

  constructor(
    input: I,
    readonly delivery: Delivery,
    private readonly worker: Worker<I, O>,
  ) {
    super(input);
  }

  deliver(): void {
    this.worker.answer(this);
  }
}

class Worker<I, O> implements BatchWorker {
  readonly name: string;
  private readonly counts = { pulled: 0, reclaimed: 0, redeliveries: 0, exhausted: 0, expired: 0, released: 0, brokerErrors: 0, forged: 0, oversized: 0 };
  private readonly engine: BatchEngine<I, O>;
  private readonly scheduler: SchedulerLike;
  /** Every request pulled and not yet answered, acknowledged or released: what touches renew. */
  private readonly held = new Set<PulledRequest<I, O>>();
  /** Of those, redelivered ones (with a batch cap): while one waits for a batch, the worker pulls nothing more. */
  private redeliveredHeld = 0;
  /** Answers of this tick, sent together: one reply frame per producer, one ack. */
  private replies: WireReply[] = [];
  /** With `auth`: which key signs each reply (see PulledRequest.keyIndex), parallel to `replies`. */
  private replyKeys: number[] = [];
  private answered: Delivery[] = [];
  private acknowledgeOnly: Delivery[] = [];
  private releasing: Delivery[] = [];
  private flushScheduled = false;
  /** Sends in progress, awaited by stop(). */
  private readonly sending = new Set<Promise<void>>();
  private readonly pullAbort = new AbortController();
  private wakePuller: (() => void) | undefined;
  private touching: Subscription | undefined;
  private stopping: Promise<void> | undefined;
  private loop: Promise<void> = Promise.resolve();
  private snapshot: BatcherStats | undefined;
  private readonly feed = new StatsFeed<WorkerStats>(() => this.stats());
  readonly stats$: Observable<WorkerStats>;
  /** The open window (known by `counters.batches` when it was seen first) and its top-ups so far. */
  private windowOf = -1;
  private topUps = 0;
  /** The last pull came back full: more waits in the broker, so fetching ahead loses no late sealing. */
  private backlogSeen = false;
  /** `counters.batches` when the worker last fetched ahead: at most one fetch per sealed batch. */
  private fetchedAheadFor = -1;
  /** When a window is open, top it up this long after: just before it closes (under the rules in force; a latency target's latest wait). */
  private get topUpAfterMs(): number {
    const chosen = this.engine.config.latencyTarget === undefined ? undefined : this.engine.counters.latencyTarget?.snapshot()?.waitMs;
    return Math.max(0, (chosen ?? this.engine.config.maxDelayMs) - 1);
  }

  constructor(
    private readonly link: WorkerLink,
    private readonly subject: string,
    config: BatchConfig<I, O>,
    private readonly rules: WorkerRules,
    private readonly rebuild: (changes: unknown) => BatchConfig<I, O>,
    private readonly connections = new ConnectionCounts(),
  ) {
    this.name = config.name;
    this.scheduler = config.deadlineScheduler;
    // The puller sleeps while no slot is free or while a topped-up window waits to be sealed:
    // wake it when a batch is sealed or finishes (or anything else changed).
    const wake = (): void => this.wakePuller?.();
    this.engine = new BatchEngine<I, O>(config, {
      slotFreed: wake,
      changed: () => {
        wake();
        this.feed.changed();
      },
    });
    this.stats$ = this.feed.stats$;
    this.engine.settled$.subscribe({ next: (request) => request.deliver() });
  }

  start(): this {
    this.loop = this.pullLoop();
    if (this.rules.touchEveryMs > 0) {
      this.touching = this.scheduler.schedule(onTouchTimer as (this: SchedulerAction<unknown>, s?: unknown) => void, this.rules.touchEveryMs, this);
    }
    return this;
  }

  /** The `maxBatchSize` in force. */
  get maxBatchSize(): number {
    return this.engine.config.maxBatchSize;
  }

  stats(): WorkerStats {
    this.snapshot = takeSnapshot(this.snapshot, this.name, this.engine.counters, this.stopping !== undefined, this.engine.settings);
    const c = this.connections;
    return Object.freeze({ ...this.snapshot, ...this.counts, disconnects: c.disconnects, reconnects: c.reconnects });
  }

  /** A connection dropped or came back: tell stats$ listeners. */
  connectionsChanged(): void {
    this.feed.changed();
  }

  stop(options?: StopOptions): Promise<void> {
    const drain = checkStopOptions(this.name, options);
    if (typeof drain !== 'boolean') return Promise.reject(drain);
    const engineStopped = this.engine.stop(drain);
    this.stopping ??= (async () => {
      this.pullAbort.abort();
      this.wakePuller?.();
      await this.loop;
      await engineStopped;
      this.flush();
      while (this.sending.size > 0) await Promise.all(this.sending);
      this.touching?.unsubscribe();
      await this.link.close();
      this.feed.changed();
      this.feed.complete();
    })();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  configure(options: ConfigureOptions): void {
    this.engine.reconfigure(this.rebuild(options));
    this.wakePuller?.(); // more room, perhaps
  }

  /** Renews the claim on everything held, then schedules the next renewal. */
  touch(action: SchedulerAction<unknown>): void {
    if (this.stopping !== undefined && this.held.size === 0) return;
    if (this.held.size > 0) {
      const deliveries: Delivery[] = [];
      for (const r of this.held) deliveries.push(r.delivery);
      this.link.touch(deliveries).catch((error: unknown) => this.brokerError(error));
    }
    action.schedule(this, this.rules.touchEveryMs);
  }

  // Pulling: the engine's room decides how much, so late sealing holds across processes.

  private async pullLoop(): Promise<void> {
    let failures = 0;
    while (this.stopping === undefined) {
      // Only what free slots can take: the rest stays in the broker for other workers (and a
      // worker whose batches hang does not take, or reclaim, requests it cannot run).
      const room = Math.min(this.engine.room(), this.engine.config.maxBatchSize);
      // Holding requests redelivered after a crash that wait for a batch: take nothing more until
      // they run, so a crash of that batch charges no request a delivery it was not run in.
      if (room <= 0 || this.redeliveredWaiting()) {
        if (room <= 0 && this.mayFetchAhead()) {
          await this.fetchAhead();
          continue;
        }
        await new Promise<void>((resolve) => (this.wakePuller = resolve));
        this.wakePuller = undefined;
        continue;
      }
      // Nothing waiting here: wait at the broker for the first request. A window is open (some
      // requests wait for more): top it up without blocking, at once (what a producer sent in
      // the same breath, e.g. the rest of a pipeline) and once more just before it closes. No
      // pull is outstanding when the batch is sealed and the slot taken.
      const gathering = this.engine.counters.queued > 0;
      if (gathering) {
        const batches = this.engine.counters.batches;
        if (this.windowOf !== batches) {
          this.windowOf = batches;
          this.topUps = 0;
        }
        if (this.engine.config.maxDelayMs === 0 || this.topUps >= 2) {
          // A zero window seals on its own (same tick); otherwise both top-ups are done: wait for
          // the seal (or anything else to change), not for another delay.
          await new Promise<void>((resolve) => (this.wakePuller = resolve));
          this.wakePuller = undefined;
          continue;
        }
        if (this.topUps === 1) {
          await this.delay(this.topUpAfterMs);
          if (this.stopping !== undefined) return;
          if (this.engine.counters.queued === 0 || this.engine.room() <= 0 || this.engine.counters.batches !== batches) continue; // sealed meanwhile
        }
        this.topUps++;
      }
      let deliveries: Delivery[];
      try {
        const max = Math.min(this.engine.room(), this.engine.config.maxBatchSize);
        deliveries = await this.link.pull(max, !gathering, this.pullAbort.signal);
        this.backlogSeen = deliveries.length >= max;
        failures = 0;
      } catch (error) {
        if (this.stopping !== undefined) return;
        this.brokerError(error);
        // Back off while the broker is away: 50 ms, doubling, at most 1 s.
        await this.delay(Math.min(1000, 50 * 2 ** failures++));
        continue;
      }
      for (const d of deliveries) this.admit(d);
    }
  }

  /**
   * Whether to fetch the next batch while the running ones run: every slot is busy, a backlog
   * waits in the broker (the last pull came back full), less than a batch waits here, nothing
   * redelivered is held (a crash would charge fetched requests a delivery they never ran), and
   * no fetch was made since the last batch was sealed. Late sealing holds: the next batch is
   * full either way, and only one batch is fetched ahead.
   */
  private mayFetchAhead(): boolean {
    const engine = this.engine;
    return this.link.pullFresh !== undefined && this.backlogSeen && this.redeliveredHeld === 0
      && this.fetchedAheadFor !== engine.counters.batches
      && engine.counters.batchesInFlight >= engine.config.maxConcurrentBatches
      && engine.waitingInputs() < engine.config.maxBatchSize;
  }

  /** Fetches up to one batch (first deliveries only, without waiting) for the next free slot. */
  private async fetchAhead(): Promise<void> {
    this.fetchedAheadFor = this.engine.counters.batches;
    const max = this.engine.config.maxBatchSize - this.engine.waitingInputs();
    let deliveries: Delivery[];
    try {
      deliveries = await this.link.pullFresh!(max, this.pullAbort.signal);
    } catch (error) {
      if (this.stopping === undefined) this.brokerError(error);
      return;
    }
    this.backlogSeen = deliveries.length >= max;
    for (const d of deliveries) this.admit(d);
  }

  /** Whether a redelivered request waits in the engine's queue (not yet in a running batch). */
  private redeliveredWaiting(): boolean {
    if (this.redeliveredHeld === 0) return false;
    for (const r of this.held) if (r.state === QUEUED && r.extras !== undefined && r.extras.batchCap !== Infinity) return true;
    return false;
  }

  private admit(d: Delivery): void {
    const counts = this.counts;
    counts.pulled++;
    if (d.reclaimed) counts.reclaimed++;
    if (d.deliveries > 1) counts.redeliveries++;
    const rules = this.rules;
    let keyIndex = 0;
    if (rules.signer !== undefined && (keyIndex = rules.signer.verifyRequest(this.subject, d)) < 0) return this.dropForged(d);
    let refusal = 0;
    let input: unknown;
    if (d.body.byteLength + (d.context === undefined ? 0 : d.context.byteLength) > rules.maxPayloadBytes) refusal = OVERSIZED;
    else if (d.deliveries > rules.maxDeliveries) refusal = EXHAUSTED;
    else if (d.deadline !== undefined && this.scheduler.now() > d.deadline + this.rules.expiredGraceMs) refusal = EXPIRED;
    let context: unknown;
    if (refusal === 0) {
      try {
        input = this.rules.codec.decode(d.body);
        if (d.context !== undefined) context = this.rules.codec.decode(d.context);
      } catch (error) {
        refusal = UNDECODABLE;
        input = error;
      }
    }
    const request = new PulledRequest<I, O>(refusal === 0 ? (input as I) : (undefined as I), d, this);
    request.keyIndex = keyIndex;
    // A priority that is not an integer (a foreign or forged entry) counts as the default.
    const priority = d.priority !== undefined && Number.isSafeInteger(d.priority) ? d.priority : 0;
    // Delivered again (its worker crashed or hung): a smaller batch each time, alone the last time.
    const cap = redeliveryCap(d.deliveries, rules.maxDeliveries, this.engine.config.maxBatchSize);
    if (context !== undefined || priority !== 0 || cap !== Infinity) {
      const extras = (request.extras = new RequestExtras(undefined, 0));
      extras.context = context;
      extras.priority = priority;
      extras.batchCap = cap;
    }
    this.held.add(request);
    if (cap !== Infinity) this.redeliveredHeld++;
    if (refusal === 0) return this.engine.submit(request);
    request.refusal = refusal;
    if (refusal === EXHAUSTED) counts.exhausted++;
    if (refusal === EXPIRED) counts.expired++;
    if (refusal === OVERSIZED) counts.oversized++;
    this.engine.refuse(request, refusal === UNDECODABLE ? input : undefined);
  }

  /** A request nobody with the key sent: acknowledged (so no worker runs it), never answered. */
  private dropForged(d: Delivery): void {
    this.counts.forged++;
    this.acknowledgeOnly.push(d);
    this.scheduleFlush();
    this.feed.changed(); // the engine never saw it: tell stats$ listeners here
    const bytes = d.body.byteLength + (d.context === undefined ? 0 : d.context.byteLength);
    const why = d.mac === undefined ? 'carries no signature' : `has a signature that does not verify with any of the ${this.rules.signer!.keyCount} keys in \`auth.keys\``;
    this.report(new DroppedMessageError(this.name, 'forged', bytes,
      `dropped request ${JSON.stringify(d.id)} (${bytes} bytes): it ${why}, so it was acknowledged without running. A client without the key wrote to the stream, or the producers have other keys (or none).`));
  }

  // Answering: every settled request becomes a reply, an acknowledgement or a release.

  /** Called once per request, when the engine settles it. */
  answer(request: PulledRequest<I, O>): void {
    this.held.delete(request);
    if (request.extras !== undefined && request.extras.batchCap !== Infinity) this.redeliveredHeld--;
    const d = request.delivery;
    const result = request.result;
    if (request.refusal === EXPIRED) this.acknowledgeOnly.push(d);
    else if (result instanceof BatcherStoppedError && result.batcher === this.name && request.refusal === 0) {
      // Stopped without draining: hand it back to the group, unanswered.
      this.counts.released++;
      this.releasing.push(d);
    } else {
      this.replies.push(this.toReply(request));
      if (this.rules.signer !== undefined) this.replyKeys.push(request.keyIndex);
      this.answered.push(d);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private toReply(request: PulledRequest<I, O>): WireReply {
    const id = request.delivery.id;
    const result = request.result;
    if (request.refusal === EXHAUSTED) {
      return [id, 'error', {
        kind: 'deliveries-exhausted',
        name: 'DeliveriesExhausted',
        message: `delivered ${request.delivery.deliveries} times; it was run ${this.rules.maxDeliveries} times (maxDeliveries) and never answered`,
      }];
    }
    if (request.refusal === UNDECODABLE) return [id, 'error', toWireError('decode-failed', result)];
    if (request.refusal === OVERSIZED) {
      const d = request.delivery;
      const bytes = d.body.byteLength + (d.context === undefined ? 0 : d.context.byteLength);
      return tooLarge(id, `the request${d.context === undefined ? '' : ' with its context'} is ${bytes} bytes, over the worker's maxPayloadBytes (${this.rules.maxPayloadBytes}); it was neither decoded nor run`);
    }
    if (request.state === SUCCEEDED) {
      let bytes: Uint8Array;
      try {
        bytes = this.rules.codec.encode(result);
      } catch (error) {
        return [id, 'error', toWireError('decode-failed', error)];
      }
      if (bytes.byteLength > this.rules.maxPayloadBytes) {
        return tooLarge(id, `the result encodes to ${bytes.byteLength} bytes, over the worker's maxPayloadBytes (${this.rules.maxPayloadBytes}); it was not sent`);
      }
      return [id, 'ok', bytes];
    }
    if (result instanceof BatchResultError) return [id, 'bad-result', { expected: result.expected, actual: result.actual }];
    if (request.state === REJECTED) return [id, 'error', toWireError('item-failed', result)];
    return [id, 'error', toWireError(request.state === BATCH_FAILED ? 'batch-failed' : 'item-failed', result)];
  }

  /** Sends this tick's answers: replies first (one frame per producer), then acknowledgements. */
  private flush(): void {
    this.flushScheduled = false;
    const replies = this.replies;
    const replyKeys = this.replyKeys;
    const answered = this.answered;
    const acknowledgeOnly = this.acknowledgeOnly;
    const releasing = this.releasing;
    if (answered.length + acknowledgeOnly.length + releasing.length === 0) return;
    this.replies = [];
    this.replyKeys = [];
    this.answered = [];
    this.acknowledgeOnly = [];
    this.releasing = [];
    const task = this.send(replies, replyKeys, answered, acknowledgeOnly, releasing).catch((error: unknown) => this.brokerError(error));
    this.sending.add(task);
    void task.then(() => this.sending.delete(task));
  }

  /** A crash between reply and acknowledgement makes a duplicate (dropped by the producer), never a loss. */
  private async send(replies: WireReply[], replyKeys: number[], answered: Delivery[], acknowledgeOnly: Delivery[], releasing: Delivery[]): Promise<void> {
    if (answered.length > 0) {
      // One frame per producer (and per signing key: one producer's requests share a key).
      const signed = this.rules.signer !== undefined;
      const byProducer = new Map<string, WireReply[]>();
      for (let i = 0; i < answered.length; i++) {
        const to = signed ? `${replyKeys[i]} ${answered[i].replyTo}` : answered[i].replyTo;
        const list = byProducer.get(to);
        if (list === undefined) byProducer.set(to, [replies[i]]);
        else list.push(replies[i]);
      }
      const frames: ReplyFrame[] = [];
      for (const [to, list] of byProducer) {
        if (!signed) this.pack(frames, to, list, 0);
        else {
          const space = to.indexOf(' ');
          this.pack(frames, to.slice(space + 1), list, Number(to.slice(0, space)));
        }
      }
      const acks = acknowledgeOnly.length === 0 ? answered : answered.concat(acknowledgeOnly);
      if (this.link.finish !== undefined && this.rules.afterReply === undefined) {
        // Replies and their acknowledgement in one round trip (the transport keeps the order).
        await Promise.all([this.link.finish(frames, acks), releasing.length > 0 ? this.link.release(releasing) : undefined]);
        return;
      }
      await this.link.reply(frames);
      if (this.rules.afterReply !== undefined) await this.rules.afterReply(answered as never[]);
    }
    const acks = acknowledgeOnly.length === 0 ? answered : answered.concat(acknowledgeOnly);
    await Promise.all([
      acks.length > 0 ? this.link.ack(acks) : undefined,
      releasing.length > 0 ? this.link.release(releasing) : undefined,
    ]);
  }

  /**
   * One frame for one producer's replies, signed when `auth` is on. A frame over
   * `maxPayloadBytes` is split in two (producers drop bigger ones unread); a single reply that
   * still does not fit becomes an error naming the limit.
   */
  private pack(frames: ReplyFrame[], replyTo: string, list: WireReply[], keyIndex: number): void {
    const signer = this.rules.signer;
    const limit = this.rules.maxPayloadBytes;
    let payload = encodeReplies(list);
    if (limit !== Infinity && payload.byteLength + (signer === undefined ? 0 : MAC_BYTES) > limit) {
      if (list.length > 1) {
        const half = list.length >> 1;
        this.pack(frames, replyTo, list.slice(0, half), keyIndex);
        this.pack(frames, replyTo, list.slice(half), keyIndex);
        return;
      }
      payload = encodeReplies([tooLarge(list[0][0], `the reply frame would be ${payload.byteLength} bytes, over the worker's maxPayloadBytes (${limit}); it was not sent`)]);
    }
    frames.push({ replyTo, frame: signer === undefined ? payload : signer.sealFrame(this.subject, replyTo, payload, keyIndex) });
  }

  private brokerError(error: unknown): void {
    this.counts.brokerErrors++;
    this.report(error);
  }

  private report(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    try {
      this.rules.onError(e);
    } catch {
      // a throwing error handler must not stop the worker
    }
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.scheduler.schedule(() => resolve(), ms));
  }
}

function tooLarge(id: string, message: string): WireReply {
  return [id, 'error', { kind: 'payload-too-large', name: 'PayloadTooLarge', message }];
}

// Private: the scheduler calls this with the worker as its state, so no closure is made per renewal.
function onTouchTimer(this: SchedulerAction<unknown>, worker?: unknown): void {
  (worker as Worker<unknown, unknown>).touch(this);
}
