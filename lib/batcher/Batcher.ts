import { map, Observable, share, Subject, type Subscriber } from 'rxjs';
import { BatchEngine } from '../core/batchEngine.js';
import { EngineRequest, NEW, Rejection, RequestExtras, SUCCEEDED } from '../core/request.js';
import { prefix } from '../errors/describe.js';
import type { BatchConfig } from '../core/config.js';
import { BATCHER_FACE, checkPriority, checkRunOptions, checkStopOptions, normalizeOptions, PREBUILT_CONFIG, reconfigured, type Prebuilt } from '../options/normalizeOptions.js';
import { takeSnapshot, type BatcherStats } from '../stats/statsSnapshot.js';
import { StatsFeed } from '../stats/statsFeed.js';
import type { BatcherOptions, ConfigureOptions, RunOptions, Settlement, StopOptions } from '../types.js';
import { toSettlement } from '../core/toSettlement.js';
import { LeanSubject } from '../util/LeanSubject.js';

/** How a face built on Batcher admits and cancels requests it makes itself (not exported from the package). */
export interface FaceAccess {
  admit<I, O>(batcher: Batcher<I, O>, request: EngineRequest<I, O>, options: RunOptions | undefined): void;
  cancel<I, O>(batcher: Batcher<I, O>, request: EngineRequest<I, O>, reason: unknown): void;
  refuse<I, O>(batcher: Batcher<I, O>, request: EngineRequest<I, O>, error: unknown): void;
}

/** Set by Batcher's static block; see {@link FaceAccess}. */
export let faceAccess: FaceAccess;

/**
 * Wraps a batch function so that callers make single calls and it receives batches.
 *
 * Requests flow through a `Subject` into per-partition queues; a batch is sealed when it is
 * full, when its first request has waited `maxDelayMs`, or on `flush()` — but only when one of
 * `maxConcurrentBatches` slots is free, so a busy model gets full batches, not a train of tiny
 * ones. Each batch is one `runBatch` call; its results come back on a shared result stream and
 * are routed to their callers by request id. `stop()` completes the request subject for good.
 *
 * Every request settles exactly once: with its value, its own error, or a batcher error
 * ({@link BatcherStoppedError}, {@link QueueFullError}, {@link RequestTimeoutError},
 * {@link BatchResultError}, or its signal's reason when aborted).
 *
 * @example
 * ```ts
 * const batcher = new Batcher<string, number[]>({
 *   name: 'embedder',
 *   runBatch: (texts, ctx) => model.embed(texts, { signal: ctx.signal }),
 *   maxBatchSize: 32,
 *   maxDelayMs: 5,
 * });
 * const vector = await batcher.run('hello');
 * await batcher.stop({ drain: true });
 * ```
 */
export class Batcher<I, O> implements AsyncDisposable {
  /** The `name` option: it appears in error messages and stats. */
  readonly name: string;
  /**
   * Every request's settlement, once, shaped like a `Promise.allSettled` entry plus `id` and
   * `input`. Hot and shared: subscribe before calling `run()` to see everything. Completes
   * after `stop()` has finished.
   */
  readonly results$: Observable<Settlement<I, O>>;
  /**
   * Stats snapshots: the current one on subscribe, then one after each batch is dispatched or
   * finished and after each request settled on its own (aborted, timed out, refused).
   * Completes after `stop()` has finished.
   */
  readonly stats$: Observable<BatcherStats>;

  readonly #engine: BatchEngine<I, O>;
  /** The request stream of the design card; completed by `stop()`. */
  readonly #requests = new LeanSubject<EngineRequest<I, O>>();
  readonly #statsFeed = new StatsFeed<BatcherStats>(() => this.stats());
  /** Validates `configure()` changes into new rules (the constructor's checks). */
  readonly #rebuild: (changes: unknown) => BatchConfig<I, O>;
  #snapshot: BatcherStats | undefined;
  #stopCalled = false;

  /**
   * @param options - the batching rules and `runBatch`; invalid ones throw a `TypeError` or
   * `RangeError` naming the option and the value.
   */
  constructor(options: BatcherOptions<I, O>) {
    // A face built on Batcher (the remote producer) hands over its own validated config.
    const prebuilt = (options as { [PREBUILT_CONFIG]?: Prebuilt<I, O> } | undefined)?.[PREBUILT_CONFIG];
    const config =
      prebuilt?.config ??
      normalizeOptions<I, O>(options, typeof options === 'object' && options !== null ? options.runBatch : undefined, BATCHER_FACE);
    this.#rebuild = prebuilt?.rebuild ??
      ((changes) => reconfigured<I, O>(config.name, options as unknown as Record<string, unknown>, changes, config.runBatch, BATCHER_FACE));
    this.name = config.name;
    // Each settled request carries the handle of its caller, so the engine routes it in O(1) and
    // no caller filters a stream; the shared settlement stream behind `results$` is materialised
    // only while someone subscribes (one subscription to the engine however many listen).
    this.#engine = new BatchEngine<I, O>(config, {
      changed: () => this.#statsFeed.changed(),
      routeToCallers: true,
      deliver: deliverPromise,
      stopped: () => this.#statsFeed.complete(),
    });
    this.#requests.subscribe({ next: (request) => this.#engine.submit(request) });
    const settled$ = this.#engine.settled$.pipe(share({ resetOnRefCountZero: true }));
    this.results$ = settled$.pipe(map(toSettlement<I, O>));
    this.stats$ = this.#statsFeed.stats$;
    prebuilt?.notifyStats?.(() => this.#statsFeed.changed());
  }

  /**
   * Runs one input as part of a batch and resolves with its own result.
   * Never throws synchronously: every failure is a rejection (bad or unknown `options` too).
   *
   * @example
   * ```ts
   * const score = await batcher.run(features, { signal: req.signal, timeoutMs: 200 });
   * ```
   */
  run(input: I, options?: RunOptions): Promise<O> {
    // One shared executor, no closure per call: it makes the request, with the promise's resolve.
    openingInput = input;
    const promise = new Promise<O>(openRequest as (resolve: (value: O) => void) => void);
    const request = opened as PromiseRequest<I, O>;
    opened = undefined;
    this.#admit(request, options);
    return promise;
  }

  /**
   * Like {@link run}, as a cold Observable: nothing is queued until you subscribe, and
   * unsubscribing before the result cancels the request (a queued one never reaches `runBatch`).
   *
   * @example
   * ```ts
   * const sub = batcher.run$(x).subscribe((y) => console.log(y));
   * sub.unsubscribe(); // changed our mind: x is dropped from the queue
   * ```
   */
  run$(input: I, options?: RunOptions): Observable<O> {
    return new Observable<O>((subscriber) => {
      const request = new SubscriberRequest<I, O>(input, subscriber);
      this.#admit(request, options);
      return () => {
        if (!request.isSettled) {
          this.#engine.cancel(request, new DOMException(`${prefix(this.name)} run$() was unsubscribed.`, 'AbortError'));
        }
      };
    });
  }

  /** Dispatches what is queued now, without waiting for `maxDelayMs` (as slots permit). */
  flush(): void {
    this.#engine.flush();
  }

  /**
   * Stops the batcher for good and resolves when nothing is in flight.
   * By default queued requests are rejected with `BatcherStoppedError`, while running batches
   * finish and deliver (their `ctx.signal` aborts). With `{ drain: true }` everything queued is
   * dispatched and finished first. Calling it again is harmless (and can turn a drain into a
   * plain stop). Bad or unknown options (`{ drian: true }`) reject with a `TypeError` and
   * leave the batcher running.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => batcher.stop({ drain: true }).then(() => process.exit(0)));
   * ```
   */
  stop(options?: StopOptions): Promise<void> {
    // Bad options (`{ drian: true }`) reject and leave the batcher running: a misspelt drain
    // must not quietly become a plain stop that discards the queue.
    const drain = checkStopOptions(this.name, options);
    if (typeof drain !== 'boolean') return Promise.reject(drain);
    this.#stopCalled = true;
    this.#requests.complete();
    return this.#engine.stop(drain);
  }

  /**
   * Changes the batching rules at run time, from the next batch formed: `maxBatchSize`,
   * `maxDelayMs`, `maxConcurrentBatches`, `maxQueueSize`, `maxBatchWeight`, `agingMs`. Checked like the
   * constructor's options (a bad value throws and changes nothing). Requests already waiting
   * are never lost or reordered: each queue is looked at afresh under the new rules (full now,
   * or a window counted from its oldest request), and running batches keep their slots.
   * `stats().settings` shows the rules in force.
   *
   * @example
   * ```ts
   * batcher.configure({ maxBatchSize: 64, maxDelayMs: 2 }); // e.g. after a model upgrade
   * ```
   */
  configure(options: ConfigureOptions): void {
    this.#engine.reconfigure(this.#rebuild(options));
  }

  /** `await using batcher = new Batcher(…)` stops it (without draining) at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * The current stats, as an immutable snapshot.
   *
   * @example
   * ```ts
   * const { queued, inFlight, meanBatchSize } = batcher.stats();
   * ```
   */
  stats(): BatcherStats {
    this.#snapshot = takeSnapshot(this.#snapshot, this.name, this.#engine.counters, this.#stopCalled, this.#engine.settings);
    return this.#snapshot;
  }

  static {
    // Faces built on Batcher (StreamingBatcher) send requests they make themselves.
    faceAccess = {
      admit: (batcher, request, options) => batcher.#admit(request, options),
      cancel: (batcher, request, reason) => batcher.#engine.cancel(request, reason),
      refuse: (batcher, request, error) => batcher.#engine.refuse(request, error),
    };
  }

  #admit(request: EngineRequest<I, O>, options: RunOptions | undefined): void {
    // The batcher's own timeoutMs is applied by the engine, for every face alike.
    // 0: the call set none (the engine applies the batcher's); Infinity: the call asked for none.
    const timeoutMs = checkRunOptions(this.name, options, 0);
    if (typeof timeoutMs !== 'number') return this.#engine.refuse(request, timeoutMs);
    const signal = options?.signal;
    const context = options?.context;
    const priority = options?.priority === undefined ? 0 : checkPriority(this.name, options.priority);
    if (typeof priority !== 'number') return this.#engine.refuse(request, priority);
    if (signal !== undefined || timeoutMs !== 0 || context !== undefined || priority !== 0) {
      const extras = (request.extras = new RequestExtras(signal, timeoutMs));
      extras.context = context;
      extras.priority = priority;
    }
    // After stop() the request subject is complete; the engine itself refuses the request.
    if (this.#stopCalled) this.#engine.submit(request);
    else this.#requests.next(request);
  }
}

/**
 * A `run()` call: the engine's request fields and the promise's `resolve`, nothing more (no
 * `deliver`: the engine hands it to {@link deliverPromise}, its `deliver` hook). It keeps only
 * `resolve`: a failure resolves the promise with a {@link Rejection}, which rejects it with
 * the same reason one microtask later. Not holding `reject` lets that function go at once
 * instead of living (with a field here) as long as the call waits.
 */
type PromiseRequest<I, O> = EngineRequest<I, O> & { resolve: (value: O | PromiseLike<O>) => void };

/**
 * The executor of every `run()` promise: makes its request as an object literal, not with
 * `new`, here rather than in `run()`. V8 notes where literals are made and, when most of those
 * made at one place outlive young-generation collections (a burst of concurrent calls waiting
 * for their batches), allocates them in the old generation from then on, so the collector stops
 * copying every pending call twice. (It did so for this site, called by the Promise constructor,
 * and not for the same literal inlined into callers' loops.) The fields are `EngineRequest`'s,
 * in its order, without `deliver` (every pending call holds one field less: 8 bytes); it has no
 * getters, so shared code reads `resultOf`/`outcomeOf`.
 */
function openRequest(resolve: (value: unknown) => void): void {
  opened = {
    id: 0,
    state: NEW,
    enqueuedAt: 0,
    place: undefined,
    extras: undefined,
    nextInQueue: undefined,
    input: openingInput,
    resolve,
  } as unknown as PromiseRequest<unknown, unknown>;
  openingInput = undefined;
}

/** The input of the request being made, and then the request (set around `new Promise`). */
let openingInput: unknown;
let opened: PromiseRequest<unknown, unknown> | undefined;

/**
 * Delivers a settled `run()` request (the engine's `deliver` hook: the literal has no `deliver`
 * field, so every pending call holds one field less).
 */
function deliverPromise(request: EngineRequest<unknown, unknown>): void {
  const r = request as PromiseRequest<unknown, unknown>;
  if (r.state === SUCCEEDED) r.resolve(r.place);
  else r.resolve(new Rejection(r.place));
}

/** A `run$()` subscription: emits and completes, or errors. */
class SubscriberRequest<I, O> extends EngineRequest<I, O> {
  constructor(
    input: I,
    private readonly subscriber: Subscriber<O>,
  ) {
    super(input);
  }

  deliver(): void {
    if (this.state === SUCCEEDED) {
      this.subscriber.next(this.result as O);
      this.subscriber.complete();
    } else {
      this.subscriber.error(this.result);
    }
  }
}
