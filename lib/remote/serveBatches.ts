import { hostname } from 'node:os';
import { isObservable, take } from 'rxjs';
import { BatcherStoppedError } from '../errors';
import { describeValue, prefix } from '../errors/describe';
import type { BatchContext, RunBatch, StopOptions } from '../types';
import { v8Codec, type Codec } from './codec';
import type { BatchTransport, Delivery, ReplyFrame, WorkerLink } from './transport';
import { encodeReplies, toWireError, type WireReply } from './wire';

/**
 * Options of {@link serveBatches}.
 *
 * @example
 * ```ts
 * const options: ServeBatchesOptions = { maxBatchSize: 64, maxDelayMs: 2, claimIdleMs: 5000 };
 * ```
 */
export interface ServeBatchesOptions {
  /** The most requests one `runBatch` call receives. Required. */
  readonly maxBatchSize: number;
  /** After the first request of a batch arrives, wait at most this long for more (client-side gather window). @default 0 */
  readonly maxDelayMs?: number;
  /** Batches this worker runs at once; it pulls only when one of these slots is free. @default 1 */
  readonly maxConcurrentBatches?: number;
  /**
   * A request delivered and not answered or touched for this long is taken over by another
   * worker. Size it well above your longest batch's queue-to-touch gap; group-wide. @default 10000
   */
  readonly claimIdleMs?: number;
  /** How often a running batch renews its claim; 0 turns renewal off. @default claimIdleMs / 3 */
  readonly touchEveryMs?: number;
  /** A request is run at most this many times; the next delivery is answered with an error. @default 5 */
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
  /** Names the worker in errors and stats. @default `<subject>@<host>:<pid>` */
  readonly name?: string;
  /** Called with broker errors the worker recovered from (it retries). @default console.warn */
  readonly onError?: (error: Error) => void;
  /**
   * Test hook: awaited after a batch's replies were sent and before they are acknowledged
   * (kill the process here to simulate a crash between the two).
   */
  readonly afterReply?: (deliveries: readonly Delivery[]) => void | Promise<void>;
}

/**
 * A worker's counters, as an immutable snapshot.
 *
 * @example
 * ```ts
 * const { batches, meanBatchSize, reclaimed } = worker.stats();
 * ```
 */
export interface WorkerStats {
  /** The worker's name (`<subject>@<host>:<pid>` unless named). */
  readonly name: string;
  /** Requests taken from the stream (including redeliveries). */
  readonly pulled: number;
  /** Of those, taken over from a worker that stopped answering. */
  readonly reclaimed: number;
  /** Of those, delivered before (deliveries > 1). */
  readonly redeliveries: number;
  /** Requests answered with an error without running, after `maxDeliveries`. */
  readonly exhausted: number;
  /** Requests dropped without running because their caller's deadline had passed (`expiredGraceMs`). */
  readonly expired: number;
  /** `runBatch` calls made. */
  readonly batches: number;
  /** Batches running now (including replying and acknowledging). */
  readonly batchesInFlight: number;
  /** Batches whose `runBatch` threw or returned a bad result. */
  readonly failedBatches: number;
  /** Mean requests per batch (0 before the first). */
  readonly meanBatchSize: number;
  /** `batchSizes[n]`: batches that held n requests. */
  readonly batchSizes: Readonly<Record<number, number>>;
  /** Requests answered with a value. */
  readonly succeeded: number;
  /** Requests answered with an error (their batch failed, their slot held an Error, or deliveries were exhausted). */
  readonly failed: number;
  /** Requests handed back unanswered by a non-draining stop. */
  readonly released: number;
  /** Broker errors recovered from. */
  readonly brokerErrors: number;
  /** `stop()` was called. */
  readonly stopped: boolean;
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
   * Stops pulling. With `{ drain: true }` running batches finish, reply and acknowledge. Without,
   * their `ctx.signal` aborts and requests they do not answer are handed back to the group.
   * Resolves when nothing runs and the connections are closed.
   */
  stop(options?: StopOptions): Promise<void>;
  /** The current counters, as an immutable snapshot. */
  stats(): WorkerStats;
}

/**
 * Serves a subject: pulls batches of waiting requests from the broker, runs them through
 * `runBatch`, replies to each request's producer, then acknowledges and deletes them. Start
 * as many workers as you like, in any number of processes and machines.
 *
 * A worker pulls only when one of its `maxConcurrentBatches` slots is free, and then takes up
 * to `maxBatchSize` requests at once (waiting `maxDelayMs` after the first for more), so a
 * busy cluster gets full batches. `runBatch` is the local `Batcher`'s: one result per input,
 * an `Error` in a slot fails that caller only, throwing fails the batch's callers.
 *
 * @example
 * ```ts
 * import { serveBatches, redisTransport } from 'rx-batcher/redis';
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
  options: ServeBatchesOptions,
): Promise<BatchWorker> {
  const config = checkWorkerOptions(subject, runBatch, options);
  const link = await transport.openWorker(subject, { claimIdleMs: config.claimIdleMs, maxDeliveries: config.maxDeliveries });
  return new Worker<I, O>(link, runBatch, config).start();
}

interface WorkerConfig {
  readonly name: string;
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly maxConcurrentBatches: number;
  readonly claimIdleMs: number;
  readonly touchEveryMs: number;
  readonly maxDeliveries: number;
  readonly expiredGraceMs: number;
  readonly codec: Codec;
  readonly onError: (error: Error) => void;
  readonly afterReply: ((deliveries: readonly Delivery[]) => void | Promise<void>) | undefined;
}

class Worker<I, O> implements BatchWorker {
  readonly name: string;
  private readonly counts = {
    pulled: 0, reclaimed: 0, redeliveries: 0, exhausted: 0, expired: 0, batches: 0, failedBatches: 0,
    succeeded: 0, failed: 0, released: 0, brokerErrors: 0,
  };
  private readonly sizes: Record<number, number> = {};
  private readonly running = new Set<Promise<void>>();
  private readonly batchAborts = new Set<AbortController>();
  private readonly pullAbort = new AbortController();
  private slotFreed: (() => void) | undefined;
  private stopReason: BatcherStoppedError | undefined;
  private stopping: Promise<void> | undefined;
  private loop: Promise<void> = Promise.resolve();
  private lastBatchId = 0;

  constructor(
    private readonly link: WorkerLink,
    private readonly runBatch: RunBatch<I, O>,
    private readonly config: WorkerConfig,
  ) {
    this.name = config.name;
  }

  start(): this {
    this.loop = this.pullLoop();
    return this;
  }

  stats(): WorkerStats {
    let items = 0;
    for (const [n, count] of Object.entries(this.sizes)) items += Number(n) * count;
    return Object.freeze({
      name: this.name,
      ...this.counts,
      batchesInFlight: this.running.size,
      meanBatchSize: this.counts.batches === 0 ? 0 : items / this.counts.batches,
      batchSizes: Object.freeze({ ...this.sizes }),
      stopped: this.stopping !== undefined,
    });
  }

  stop(options?: StopOptions): Promise<void> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      return Promise.reject(new TypeError(`${prefix(this.name)} stop(options): \`options\` must be an object like { drain: true }, got ${describeValue(options)}.`));
    }
    if (options?.drain !== true && this.stopReason === undefined) {
      this.stopReason = new BatcherStoppedError(this.name, 'running');
      for (const controller of this.batchAborts) controller.abort(this.stopReason);
    }
    this.stopping ??= (async () => {
      this.pullAbort.abort();
      this.slotFreed?.();
      await this.loop;
      while (this.running.size > 0) await Promise.all(this.running);
      await this.link.close();
    })();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private get closing(): boolean {
    return this.stopping !== undefined;
  }

  private async pullLoop(): Promise<void> {
    const { maxBatchSize, maxDelayMs, maxConcurrentBatches } = this.config;
    let failures = 0;
    while (!this.closing) {
      if (this.running.size >= maxConcurrentBatches) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = undefined;
        continue;
      }
      let deliveries: Delivery[];
      try {
        deliveries = await this.link.pull(maxBatchSize, true, this.pullAbort.signal);
        failures = 0;
      } catch (error) {
        if (this.closing) return;
        this.brokerError(error);
        // Back off while the broker is away: 50 ms, doubling, at most 1 s.
        await delay(Math.min(1000, 50 * 2 ** failures++));
        continue;
      }
      if (deliveries.length === 0) continue;
      if (deliveries.length < maxBatchSize && maxDelayMs > 0 && !this.closing) {
        // The gather window, on the client: wait for more, then take what came without blocking.
        await delay(maxDelayMs);
        try {
          deliveries = deliveries.concat(await this.link.pull(maxBatchSize - deliveries.length, false));
        } catch (error) {
          this.brokerError(error); // run what we have; the next pull retries the broker
        }
      }
      this.startBatch(deliveries);
    }
  }

  private brokerError(error: unknown): void {
    this.counts.brokerErrors++;
    const e = error instanceof Error ? error : new Error(String(error));
    try {
      this.config.onError(e);
    } catch {
      // a throwing error handler must not stop the worker
    }
  }

  private startBatch(deliveries: Delivery[]): void {
    const task = this.serve(deliveries).catch((error: unknown) => this.brokerError(error));
    this.running.add(task);
    void task.then(() => {
      this.running.delete(task);
      this.slotFreed?.();
    });
  }

  /** Runs one pulled batch to the end: reply, then acknowledge. */
  private async serve(deliveries: Delivery[]): Promise<void> {
    const { codec, maxDeliveries, touchEveryMs, expiredGraceMs } = this.config;
    const counts = this.counts;
    counts.pulled += deliveries.length;
    // Callers that gave up long ago wait for nothing: acknowledge their requests unanswered.
    if (expiredGraceMs !== Infinity) {
      const now = Date.now();
      const stale = deliveries.filter((d) => d.deadline !== undefined && now > d.deadline + expiredGraceMs);
      if (stale.length > 0) {
        counts.expired += stale.length;
        await this.link.ack(stale);
        deliveries = deliveries.filter((d) => !stale.includes(d));
        if (deliveries.length === 0) return;
      }
    }
    const replies: WireReply[] = new Array(deliveries.length);
    const runnable: number[] = [];
    const inputs: I[] = [];
    for (let i = 0; i < deliveries.length; i++) {
      const d = deliveries[i];
      if (d.reclaimed) counts.reclaimed++;
      if (d.deliveries > 1) counts.redeliveries++;
      if (d.deliveries > maxDeliveries) {
        counts.exhausted++;
        replies[i] = [d.id, 'error', {
          kind: 'deliveries-exhausted',
          name: 'DeliveriesExhausted',
          message: `delivered ${d.deliveries} times; it was run ${maxDeliveries} times (maxDeliveries) and never answered`,
        }];
        continue;
      }
      try {
        inputs.push(codec.decode(d.body) as I);
        runnable.push(i);
      } catch (error) {
        replies[i] = [d.id, 'error', toWireError('decode-failed', error)];
      }
    }

    let release = false;
    if (runnable.length > 0) {
      const controller = new AbortController();
      if (this.stopReason !== undefined) controller.abort(this.stopReason);
      this.batchAborts.add(controller);
      const touching = touchEveryMs > 0 ? setInterval(() => {
        this.link.touch(runnable.map((i) => deliveries[i])).catch((error: unknown) => this.brokerError(error));
      }, touchEveryMs) : undefined;
      const ctx: BatchContext = {
        batchId: ++this.lastBatchId,
        size: inputs.length,
        reason: inputs.length >= this.config.maxBatchSize ? 'full' : 'delay',
        partition: undefined,
        signal: controller.signal,
      };
      counts.batches++;
      this.sizes[inputs.length] = (this.sizes[inputs.length] ?? 0) + 1;
      let outcome: { ok: true; results: unknown } | { ok: false; error: unknown };
      try {
        outcome = { ok: true, results: await resultOf(this.runBatch(inputs, ctx)) };
      } catch (error) {
        outcome = { ok: false, error };
      } finally {
        if (touching !== undefined) clearInterval(touching);
        this.batchAborts.delete(controller);
      }
      if (!outcome.ok && this.stopReason !== undefined && outcome.error === this.stopReason) {
        release = true; // stopped without draining: hand the batch back to the group
      } else {
        this.fillReplies(deliveries, runnable, outcome, replies);
      }
    }

    if (release) {
      const unanswered = runnable.map((i) => deliveries[i]);
      counts.released += unanswered.length;
      const answered = deliveries.filter((_, i) => replies[i] !== undefined);
      await this.answer(answered, replies.filter((r) => r !== undefined));
      await this.link.release(unanswered);
      return;
    }
    await this.answer(deliveries, replies);
  }

  private fillReplies(
    deliveries: Delivery[],
    runnable: number[],
    outcome: { ok: true; results: unknown } | { ok: false; error: unknown },
    replies: WireReply[],
  ): void {
    const counts = this.counts;
    if (!outcome.ok) {
      counts.failedBatches++;
      const error = toWireError('batch-failed', outcome.error);
      for (const i of runnable) replies[i] = [deliveries[i].id, 'error', error];
      return;
    }
    const results = outcome.results;
    const length = isArrayLike(results) ? results.length : undefined;
    if (length !== runnable.length) {
      counts.failedBatches++;
      for (const i of runnable) replies[i] = [deliveries[i].id, 'bad-result', { expected: runnable.length, actual: length }];
      return;
    }
    const list = results as ArrayLike<unknown>;
    for (let k = 0; k < runnable.length; k++) {
      const i = runnable[k];
      const value = list[k];
      if (value instanceof Error) {
        replies[i] = [deliveries[i].id, 'error', toWireError('item-failed', value)];
        continue;
      }
      try {
        replies[i] = [deliveries[i].id, 'ok', this.config.codec.encode(value)];
      } catch (error) {
        replies[i] = [deliveries[i].id, 'error', toWireError('decode-failed', error)];
      }
    }
  }

  /** Replies (one frame per producer), then acknowledges. A crash in between makes a duplicate, never a loss. */
  private async answer(deliveries: readonly Delivery[], replies: readonly WireReply[]): Promise<void> {
    if (deliveries.length === 0) return;
    const byProducer = new Map<string, WireReply[]>();
    for (let i = 0; i < deliveries.length; i++) {
      const reply = replies[i];
      if (reply[1] === 'ok') this.counts.succeeded++;
      else this.counts.failed++;
      const list = byProducer.get(deliveries[i].replyTo);
      if (list === undefined) byProducer.set(deliveries[i].replyTo, [reply]);
      else list.push(reply);
    }
    const frames: ReplyFrame[] = [];
    for (const [replyTo, list] of byProducer) frames.push({ replyTo, frame: encodeReplies(list) });
    await this.link.reply(frames);
    if (this.config.afterReply !== undefined) await this.config.afterReply(deliveries);
    await this.link.ack(deliveries);
  }
}

function graceMs(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${prefix(name)} \`expiredGraceMs\` must be a number of milliseconds ≥ 0 (or Infinity to run every request), got ${describeValue(value)}.`);
  }
  return value;
}

/** Waits for what runBatch returned: an array, a promise of one, or an Observable's first emission. */
function resultOf(output: unknown): Promise<unknown> {
  if (isObservable(output)) {
    return new Promise((resolve, reject) => {
      let emitted = false;
      output.pipe(take(1)).subscribe({
        next: (value) => {
          emitted = true;
          resolve(value);
        },
        error: reject,
        complete: () => {
          if (!emitted) resolve(undefined);
        },
      });
    });
  }
  return Promise.resolve(output);
}

function isArrayLike(value: unknown): value is ArrayLike<unknown> {
  return Array.isArray(value) || ArrayBuffer.isView(value) || (typeof value === 'object' && value !== null && typeof (value as ArrayLike<unknown>).length === 'number');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkWorkerOptions(subject: string, runBatch: unknown, options: ServeBatchesOptions): WorkerConfig {
  const fallback = typeof subject === 'string' && subject.length > 0 ? subject : 'serveBatches';
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new TypeError(`${prefix(fallback)} serveBatches(transport, subject, …): \`subject\` must be a non-empty string such as 'scorer', got ${describeValue(subject)}.`);
  }
  if (typeof runBatch !== 'function') {
    throw new TypeError(`${prefix(fallback)} \`runBatch\` must be a function (inputs, ctx) => results, got ${describeValue(runBatch)}.`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${prefix(fallback)} serveBatches options must be an object like { maxBatchSize: 32 }, got ${describeValue(options)}.`);
  }
  const known = new Set(['maxBatchSize', 'maxDelayMs', 'maxConcurrentBatches', 'claimIdleMs', 'touchEveryMs', 'maxDeliveries', 'expiredGraceMs', 'codec', 'name', 'onError', 'afterReply']);
  const hints: Record<string, string> = { maxWaitMs: 'maxDelayMs', concurrency: 'maxConcurrentBatches', batchSize: 'maxBatchSize', maxDeliver: 'maxDeliveries', ackWaitMs: 'claimIdleMs' };
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new TypeError(`${prefix(fallback)} unknown option \`${key}\`${hints[key] ? `; did you mean \`${hints[key]}\`?` : `. Known options: ${[...known].join(', ')}.`}`);
    }
  }
  const name = options.name ?? `${subject}@${hostname()}:${process.pid}`;
  const integer = (option: string, value: unknown, min: number, infinity: boolean): number => {
    if (typeof value !== 'number' || !((Number.isInteger(value) && value >= min) || (infinity && value === Infinity))) {
      throw new RangeError(`${prefix(name)} \`${option}\` must be an integer ≥ ${min}${infinity ? ' or Infinity' : ''}, got ${describeValue(value)}.`);
    }
    return value;
  };
  const ms = (option: string, value: unknown, min: number): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new RangeError(`${prefix(name)} \`${option}\` must be a finite number of milliseconds ≥ ${min}, got ${describeValue(value)}.`);
    }
    return value;
  };
  if (options.maxBatchSize === undefined) {
    throw new TypeError(`${prefix(name)} \`maxBatchSize\` is required: the most requests one runBatch call may receive (an integer ≥ 1).`);
  }
  const claimIdleMs = options.claimIdleMs === undefined ? 10_000 : ms('claimIdleMs', options.claimIdleMs, 10);
  const touchEveryMs = options.touchEveryMs === undefined ? Math.max(1, Math.floor(claimIdleMs / 3)) : ms('touchEveryMs', options.touchEveryMs, 0);
  if (touchEveryMs >= claimIdleMs) {
    throw new RangeError(`${prefix(name)} \`touchEveryMs\` (${touchEveryMs}) must be below \`claimIdleMs\` (${claimIdleMs}), or running batches get reclaimed and answered twice; claimIdleMs / 3 is a good value.`);
  }
  const codec = options.codec ?? v8Codec;
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new TypeError(`${prefix(name)} \`codec\` must be an object with encode(value) and decode(bytes), got ${describeValue(codec)}.`);
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new TypeError(`${prefix(name)} \`onError\` must be a function (error) => void, got ${describeValue(options.onError)}.`);
  }
  return {
    name,
    maxBatchSize: integer('maxBatchSize', options.maxBatchSize, 1, false),
    maxDelayMs: options.maxDelayMs === undefined ? 0 : ms('maxDelayMs', options.maxDelayMs, 0),
    maxConcurrentBatches: options.maxConcurrentBatches === undefined ? 1 : integer('maxConcurrentBatches', options.maxConcurrentBatches, 1, true),
    claimIdleMs,
    touchEveryMs,
    maxDeliveries: options.maxDeliveries === undefined ? 5 : integer('maxDeliveries', options.maxDeliveries, 1, false),
    expiredGraceMs: options.expiredGraceMs === undefined ? 1000 : graceMs(name, options.expiredGraceMs),
    codec,
    onError: options.onError ?? ((error) => console.warn(`${prefix(name)} ${error.message}`)),
    afterReply: options.afterReply,
  };
}
