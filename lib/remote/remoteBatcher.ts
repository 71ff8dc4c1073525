import { randomBytes } from 'node:crypto';
import { Observable } from 'rxjs';
import { BatchResultError, BatcherStoppedError, QueueFullError, RequestTimeoutError } from '../errors';
import { describeValue, prefix } from '../errors/describe';
import { checkRunOptions } from '../options/normalizeOptions';
import type { RunOptions, StopOptions } from '../types';
import { v8Codec, type Codec } from './codec';
import { RemoteBatchError } from './RemoteBatchError';
import type { BatchTransport, ProducerLink } from './transport';
import { decodeReplies, type WireReply } from './wire';

/** A producer has no window and no slots of its own: the capacity is in the workers. */
const REMOTE_TIMEOUT_HINT = 'Raise timeoutMs, check that workers are running, or add workers (serveBatches) or their maxConcurrentBatches.';

/**
 * Options of {@link remoteBatcher}.
 *
 * @example
 * ```ts
 * const options: RemoteBatcherOptions = { timeoutMs: 2000, maxInFlight: 10_000 };
 * ```
 */
export interface RemoteBatcherOptions {
  /** Names the batcher in error messages and stats. @default the subject */
  readonly name?: string;
  /** Per-request deadline in ms from `run()`; `run(x, { timeoutMs })` overrides it. @default Infinity */
  readonly timeoutMs?: number;
  /** Requests sent and not yet answered; beyond it `run()` rejects at once with `QueueFullError`. @default Infinity */
  readonly maxInFlight?: number;
  /** Must match the workers' codec. @default v8Codec */
  readonly codec?: Codec;
}

/**
 * A producer's counters, as an immutable snapshot.
 *
 * @example
 * ```ts
 * const { inFlight, duplicatesDropped } = scorer.stats();
 * ```
 */
export interface RemoteBatcherStats {
  /** The batcher's name (its subject unless named). */
  readonly name: string;
  /** Sent and not yet settled. */
  readonly inFlight: number;
  /** Every `run()` call, including refused ones. */
  readonly submitted: number;
  /** Settled with a value. */
  readonly succeeded: number;
  /** Settled with a worker, codec or broker error. */
  readonly failed: number;
  /** Aborted by their signal. */
  readonly cancelled: number;
  /** Their deadline passed (`RequestTimeoutError`). */
  readonly timedOut: number;
  /** Refused without sending: producer full or stopped, bad call options, input the codec refused. */
  readonly rejected: number;
  /** Replies for requests already settled (a redelivered request answered twice, or a reply after its deadline), dropped. */
  readonly duplicatesDropped: number;
  /** `stop()` was called. */
  readonly stopped: boolean;
}

/**
 * The producer face of a remote batcher: the same `run()` as the local `Batcher`.
 *
 * @example
 * ```ts
 * const scores = await scorer.run(features, { signal, timeoutMs: 500 });
 * ```
 */
export interface RemoteBatcher<I, O> extends AsyncDisposable {
  /** The batcher's name (its subject unless named), used in errors and stats. */
  readonly name: string;
  /** Sends one input to the workers and resolves with its own result. Never throws synchronously. */
  run(input: I, options?: RunOptions): Promise<O>;
  /**
   * Like {@link run}, as a cold Observable: nothing is sent until you subscribe, and
   * unsubscribing before the answer cancels the call (a late reply is dropped).
   *
   * @example
   * ```ts
   * const sub = scorer.run$(features).subscribe((scores) => render(scores));
   * sub.unsubscribe(); // changed our mind
   * ```
   */
  run$(input: I, options?: RunOptions): Observable<O>;
  /**
   * Stops for good. Without `drain`, requests still waiting for an answer reject with
   * `BatcherStoppedError`; with `{ drain: true }` they are awaited (until answered or timed out).
   * Then the connections are closed.
   */
  stop(options?: StopOptions): Promise<void>;
  /** The current counters, as an immutable snapshot. */
  stats(): RemoteBatcherStats;
}

interface Pending {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

type Counter = 'succeeded' | 'failed' | 'cancelled' | 'timedOut' | 'rejected';

/**
 * Sends single calls to a pool of workers ({@link serveBatches}) through a broker and routes
 * each answer back to its caller. Workers pull full batches from the shared stream, so a
 * cluster batches as well as one process does.
 *
 * `run()` behaves like the local `Batcher.run()`: same per-call options, and `QueueFullError`
 * (`maxInFlight` reached), `RequestTimeoutError` (phase `'running'`: the request may have
 * reached a worker), `BatcherStoppedError` and `signal.reason` as in the core; worker failures
 * arrive as {@link RemoteBatchError} (or `BatchResultError` when the worker's `runBatch`
 * returned the wrong number of results). Each request settles exactly once; duplicate and
 * late replies are dropped.
 *
 * @example
 * ```ts
 * import { remoteBatcher, redisTransport } from 'rx-batcher/redis';
 * const scorer = remoteBatcher<Features, Scores>(redisTransport({ url }), 'scorer', {
 *   timeoutMs: 2000, maxInFlight: 10_000,
 * });
 * const scores = await scorer.run(features, { signal });
 * await scorer.stop({ drain: true });
 * ```
 */
export function remoteBatcher<I, O>(transport: BatchTransport, subject: string, options: RemoteBatcherOptions = {}): RemoteBatcher<I, O> {
  const name = checkProducerOptions(subject, options);
  const codec = options.codec ?? v8Codec;
  const defaultTimeoutMs = options.timeoutMs ?? Infinity;
  const maxInFlight = options.maxInFlight ?? Infinity;
  const idPrefix = randomBytes(6).toString('base64url') + '.';
  const pending = new Map<string, Pending>();
  const counts = { submitted: 0, succeeded: 0, failed: 0, cancelled: 0, timedOut: 0, rejected: 0, duplicatesDropped: 0 };
  let sequence = 0;
  let stopped = false;
  let drained: (() => void) | undefined;
  let stopping: Promise<void> | undefined;

  const settle = (id: string, counter: Counter, ok: boolean, value: unknown): boolean => {
    const p = pending.get(id);
    if (p === undefined) return false;
    pending.delete(id);
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.onAbort !== undefined) p.signal!.removeEventListener('abort', p.onAbort);
    counts[counter]++;
    if (ok) p.resolve(value);
    else p.reject(value);
    if (pending.size === 0) drained?.();
    return true;
  };

  const onReply = (reply: WireReply): void => {
    const id = reply[0];
    if (!pending.has(id)) {
      counts.duplicatesDropped++;
      return;
    }
    if (reply[1] === 'ok') {
      let value: unknown;
      try {
        value = codec.decode(reply[2]);
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        settle(id, 'failed', false, new RemoteBatchError(name, 'decode-failed', e.name, `decoding the result: ${e.message}`));
        return;
      }
      settle(id, 'succeeded', true, value);
    } else if (reply[1] === 'error') {
      const w = reply[2];
      settle(id, 'failed', false, new RemoteBatchError(name, w.kind, w.name, w.message, w.stack));
    } else {
      settle(id, 'failed', false, new BatchResultError(name, reply[2].expected, reply[2].actual));
    }
  };

  const link: Promise<ProducerLink> = transport.openProducer(subject, (frame) => {
    for (const reply of decodeReplies(frame)) onReply(reply);
  });
  // Opening failures surface on each run(); keep an unobserved rejection from crashing the process.
  link.catch(() => undefined);

  const sendFailed = (id: string, error: unknown): void => {
    const e = error instanceof Error ? error : new Error(String(error));
    settle(id, 'failed', false, new RemoteBatchError(name, 'send-failed', e.name, e.message, e.stack));
  };

  const run = (input: I, runOptions?: RunOptions): Promise<O> =>
    new Promise<O>((resolve, reject) => {
      counts.submitted++;
      const refuse = (counter: Counter, error: unknown): void => {
        counts[counter]++;
        reject(error);
      };
      if (stopped) return refuse('rejected', new BatcherStoppedError(name));
      const timeoutMs = checkRunOptions(name, runOptions, defaultTimeoutMs);
      if (typeof timeoutMs !== 'number') return refuse('rejected', timeoutMs);
      const signal = runOptions?.signal;
      if (signal?.aborted) return refuse('cancelled', signal.reason);
      if (pending.size >= maxInFlight) return refuse('rejected', new QueueFullError(name, maxInFlight, 'maxInFlight'));
      let body: Uint8Array;
      try {
        body = codec.encode(input);
      } catch (error) {
        return refuse('rejected', new TypeError(`${prefix(name)} the codec could not encode this input: ${error instanceof Error ? error.message : String(error)}`));
      }
      const id = idPrefix + (++sequence).toString(36);
      const deadline = timeoutMs === Infinity ? undefined : Date.now() + timeoutMs;
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, timer: undefined, signal, onAbort: undefined };
      pending.set(id, p);
      if (timeoutMs !== Infinity) {
        p.timer = setTimeout(() => settle(id, 'timedOut', false, new RequestTimeoutError(name, timeoutMs, 'running', REMOTE_TIMEOUT_HINT)), timeoutMs);
      }
      if (signal !== undefined) {
        p.onAbort = () => settle(id, 'cancelled', false, signal.reason);
        signal.addEventListener('abort', p.onAbort);
      }
      link.then(
        (l) => l.send({ id, replyTo: l.replyTo, body, ...(deadline !== undefined ? { deadline } : {}) }).catch((error: unknown) => sendFailed(id, error)),
        (error: unknown) => sendFailed(id, error),
      );
    });

  const run$ = (input: I, runOptions?: RunOptions): Observable<O> =>
    new Observable<O>((subscriber) => {
      const unsubscribed = new AbortController();
      const own = runOptions?.signal;
      // A bad `signal` option is left in place, for run() to reject with its TypeError.
      const options = own !== undefined && !(own instanceof AbortSignal)
        ? runOptions
        : { ...runOptions, signal: own === undefined ? unsubscribed.signal : AbortSignal.any([own, unsubscribed.signal]) };
      run(input, options).then(
        (value) => {
          subscriber.next(value);
          subscriber.complete();
        },
        (error: unknown) => {
          if (!unsubscribed.signal.aborted) subscriber.error(error);
        },
      );
      return () => unsubscribed.abort(new DOMException(`${prefix(name)} run$() was unsubscribed.`, 'AbortError'));
    });

  const stop = (stopOptions?: StopOptions): Promise<void> => {
    if (stopOptions !== undefined && (typeof stopOptions !== 'object' || stopOptions === null)) {
      return Promise.reject(new TypeError(`${prefix(name)} stop(options): \`options\` must be an object like { drain: true }, got ${describeValue(stopOptions)}.`));
    }
    stopped = true;
    if (stopOptions?.drain !== true) {
      for (const id of [...pending.keys()]) settle(id, 'rejected', false, new BatcherStoppedError(name, 'queued'));
    }
    stopping ??= (async () => {
      if (pending.size > 0) await new Promise<void>((resolve) => (drained = resolve));
      await link.then((l) => l.close(), () => undefined);
    })();
    return stopping;
  };

  return {
    name,
    run,
    run$,
    stop,
    [Symbol.asyncDispose]: () => stop(),
    stats: () =>
      Object.freeze({ name, inFlight: pending.size, ...counts, stopped }),
  };
}

function checkProducerOptions(subject: string, options: RemoteBatcherOptions): string {
  const fallback = typeof subject === 'string' && subject.length > 0 ? subject : 'remoteBatcher';
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new TypeError(`${prefix(fallback)} remoteBatcher(transport, subject): \`subject\` must be a non-empty string such as 'scorer', got ${describeValue(subject)}.`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${prefix(fallback)} remoteBatcher options must be an object like { timeoutMs: 2000 }, got ${describeValue(options)}.`);
  }
  const known = new Set(['name', 'timeoutMs', 'maxInFlight', 'codec']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      const hint = key === 'maxQueueSize' ? '; did you mean `maxInFlight`?' : `. Known options: ${[...known].join(', ')}.`;
      throw new TypeError(`${prefix(fallback)} unknown option \`${key}\`${hint}`);
    }
  }
  const name = options.name ?? subject;
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${prefix(fallback)} \`name\` must be a non-empty string, got ${describeValue(name)}.`);
  const { timeoutMs, maxInFlight, codec } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs <= 0)) {
    throw new RangeError(`${prefix(name)} \`timeoutMs\` must be a number of milliseconds > 0 (or Infinity for none), got ${describeValue(timeoutMs)}.`);
  }
  if (maxInFlight !== undefined && (typeof maxInFlight !== 'number' || !(Number.isInteger(maxInFlight) || maxInFlight === Infinity) || maxInFlight < 1)) {
    throw new RangeError(`${prefix(name)} \`maxInFlight\` must be an integer ≥ 1 or Infinity, got ${describeValue(maxInFlight)}.`);
  }
  if (codec !== undefined && (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function')) {
    throw new TypeError(`${prefix(name)} \`codec\` must be an object with encode(value) and decode(bytes), got ${describeValue(codec)}.`);
  }
  return name;
}
