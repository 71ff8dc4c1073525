/* Request objects are created once per call, so they carry only what the engine needs. */

/** Lifecycle of a request inside the engine. Each request moves forward only. */
export const NEW = 0;
export const QUEUED = 1;
export const RUNNING = 2;
/** Every state from here on is settled; the code says how. */
export const SUCCEEDED = 3 as const;
export const FAILED = 4 as const;
export const CANCELLED = 5 as const;
export const TIMED_OUT = 6 as const;
export const REJECTED = 7 as const;
/** Failed with its whole batch (`runBatch` threw, rejected or broke the result contract), not by its own slot. */
export const BATCH_FAILED = 8 as const;

/** How a request ended, for stats. */
export type Outcome = 'succeeded' | 'failed' | 'cancelled' | 'timedOut' | 'rejected';

const OUTCOMES: readonly (Outcome | undefined)[] = [
  undefined, undefined, undefined, 'succeeded', 'failed', 'cancelled', 'timedOut', 'rejected', 'failed',
];

/** A settled state code. */
export type SettledState = typeof SUCCEEDED | typeof FAILED | typeof CANCELLED | typeof TIMED_OUT | typeof REJECTED | typeof BATCH_FAILED;

/** What only some calls have (a signal or a deadline), kept off the common path. */
export class RequestExtras {
  /** The listener registered on {@link signal}, removed when the request settles. */
  onAbort: (() => void) | undefined = undefined;
  /** The deadline in ms since the engine started (deadline scheduler clock); 0 until queued. */
  deadline = 0;
  /** What `weigh(input)` said this input costs; 0 without `weigh`. */
  weight = 0;
  /** The call's `context` option, passed through to `runBatch` and `results$`. */
  context: unknown = undefined;
  /** The call's `priority` option (an integer, higher first); 0 when it gave none. */
  priority = 0;
  /**
   * The most inputs a batch holding this request may have (`Infinity`: `maxBatchSize` rules).
   * A worker sets it on a redelivered request (lib/core/redelivery.ts).
   */
  batchCap = Infinity;

  constructor(
    readonly signal: AbortSignal | undefined,
    /**
     * The call's timeout in ms (its own, else the batcher's): 0 while the call set none (the
     * batcher's then applies), `Infinity` when the call asked for no deadline.
     */
    public timeoutMs: number,
  ) {}
}

/**
 * One caller's request as the engine tracks it: a single small object per call that carries
 * the input, its place (queue or batch) and, once settled, its outcome. The facade that
 * created it (`Batcher.run`, `run$`, `batchMap`) decides in {@link deliver} how the outcome
 * reaches the caller. The hot path allocates this object plus the caller's promise, nothing else.
 */
export abstract class EngineRequest<I, O> {
  /** Unique within one engine, counting from 1; settlements are routed by it. */
  id = 0;
  /** NEW, QUEUED, RUNNING, or a settled code (≥ SUCCEEDED). */
  state: number = NEW;
  /** When it was enqueued: the engine's tick (whole ms since it started, a small integer V8 stores unboxed). */
  enqueuedAt = 0;
  /**
   * Where it is, then how it ended, in one field (every pending request holds it, so each field
   * counts): the partition queue while QUEUED, the batch (or, with `dedupeBy`, the shared slot)
   * while RUNNING, and once settled the value when it succeeded, otherwise the reason (read it
   * as {@link result}).
   */
  place: unknown = undefined;
  extras: RequestExtras | undefined = undefined;
  /** The next request in its partition's queue, while queued. */
  nextInQueue: EngineRequest<I, O> | undefined = undefined;

  constructor(
    /** The input; with `defaults`, the filled-in copy that `runBatch` receives. */
    public input: I,
  ) {}

  // The three getters below exist on requests made by a class. `Batcher.run()`'s requests are
  // object literals of the same fields (see `promiseRequest` in lib/batcher/Batcher.ts), so code
  // that sees every kind of request uses {@link resultOf} and {@link outcomeOf} instead.

  /** Once settled: the value when it succeeded, otherwise the reason; `undefined` while pending. */
  get result(): O | unknown {
    return this.state >= SUCCEEDED ? this.place : undefined;
  }

  get isSettled(): boolean {
    return this.state >= SUCCEEDED;
  }

  /** How it settled; `undefined` while pending. */
  get outcome(): Outcome | undefined {
    return OUTCOMES[this.state];
  }

  /**
   * Hands the settled outcome to the caller. Called exactly once, by the result router. (A face
   * may make its requests as object literals without it and give the engine a `deliver` hook instead.)
   */
  abstract deliver(): void;
}

/**
 * How a request settled (`undefined` while pending), for any request, class-made or literal.
 *
 * @example
 * ```ts
 * if (outcomeOf(request) === 'succeeded') use(resultOf(request));
 * ```
 */
export function outcomeOf(request: EngineRequest<unknown, unknown>): Outcome | undefined {
  return OUTCOMES[request.state];
}

/**
 * A settled request's value (succeeded) or reason (otherwise); `undefined` while pending.
 *
 * @example
 * ```ts
 * const reason = resultOf(request);
 * ```
 */
export function resultOf<O>(request: EngineRequest<unknown, O>): O | unknown {
  return request.state >= SUCCEEDED ? request.place : undefined;
}

/**
 * A thenable that rejects with `reason`: resolving a promise with it rejects that promise with
 * the same reason, one microtask later. It lets a face keep only a promise's `resolve` per
 * pending call (see `PromiseRequest` in lib/batcher/Batcher.ts): the `reject` function then dies
 * young instead of living, with a field to hold it, as long as the call waits.
 *
 * @example
 * ```ts
 * resolve(new Rejection(new Error('model failed'))); // the promise rejects with that error
 * ```
 */
export class Rejection {
  constructor(readonly reason: unknown) {}

  then(_onFulfilled: unknown, onRejected: (reason: unknown) => void): void {
    onRejected(this.reason);
  }
}
