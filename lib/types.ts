import type { Observable, SchedulerLike } from 'rxjs';

/**
 * Why a batch was sealed and sent to `runBatch`:
 * - `'full'`: it reached `maxBatchSize`;
 * - `'delay'`: its first request had waited `maxDelayMs`;
 * - `'flush'`: `flush()` was called;
 * - `'drain'`: `stop({ drain: true })` (or an operator's source completing) is emptying the queue;
 * - `'target'`: under `latencyTarget`, waiting longer would have pushed its oldest request past the target.
 */
export type DispatchReason = 'full' | 'delay' | 'flush' | 'drain' | 'target';

/**
 * What `runBatch` learns about the batch it is asked to run.
 *
 * @example
 * ```ts
 * const runBatch: RunBatch<string, number> = async (texts, ctx) => {
 *   console.log(`batch ${ctx.batchId}: ${ctx.size} inputs (${ctx.reason})`);
 *   return model.score(texts, { signal: ctx.signal });
 * };
 * ```
 */
export interface BatchContext {
  /** A number unique within one batcher, counting from 1. */
  readonly batchId: number;
  /** How many inputs the batch holds (1 ≤ size ≤ `maxBatchSize`). */
  readonly size: number;
  /** Why the batch was sealed. */
  readonly reason: DispatchReason;
  /** The `partitionBy` key shared by every input of the batch; `undefined` without `partitionBy`. */
  readonly partition: string | undefined;
  /**
   * Aborts when nobody waits for this batch any more (every caller aborted or timed out), or
   * when the batcher is stopped without draining. Pass it on to `fetch`, a model client, etc.
   * In the first case the batch is abandoned: its slot is freed at once and whatever
   * `runBatch` returns later is dropped (`stats().abandonedBatches` counts these).
   */
  readonly signal: AbortSignal;
  /**
   * For each input, when its caller gives up: a time on the batcher's scheduler clock (ms since
   * the epoch with the default scheduler, like `Date.now()`), or `Infinity` for no deadline.
   * Lets `runBatch` skip or shorten work nobody will wait for; the remote producer sends it
   * with each request. With `dedupeBy`, an input shared by several calls has the latest of
   * their deadlines (`Infinity` while one of them has none).
   */
  readonly deadlines: readonly number[];
  /** The batch's total weight: the sum of `weigh(input)` over its inputs (its size without `weigh`). */
  readonly weight: number;
  /**
   * For each input, the `context` its caller passed to `run(x, { context })`, or `undefined`.
   * With `dedupeBy`, an input shared by several calls has the context of the call that brought
   * it first (`results$` still carries each caller's own).
   */
  readonly contexts: readonly unknown[];
  /** For each input, its caller's `priority` (`run(x, { priority })`; 0 when it gave none). */
  readonly priorities: readonly number[];
  /**
   * Present only when this call runs part of a batch whose `runBatch` call failed, under
   * `isolateFailures: 'bisect'`: which retry it is and why. `batchId`, `reason` and
   * `partition` are the batch's; `size`, `deadlines`, `contexts`, `priorities` and `weight`
   * describe this part. Absent on a batch's first call.
   */
  readonly bisection?: BisectionStep;
}

/**
 * What `ctx.bisection` tells a `runBatch` call that retries part of a failed batch
 * (`isolateFailures: 'bisect'`).
 *
 * @example
 * ```ts
 * const runBatch: RunBatch<string, number> = (texts, ctx) => {
 *   if (ctx.bisection) log.warn(`retrying ${ctx.size} of batch ${ctx.batchId} (call ${ctx.bisection.call})`, ctx.bisection.cause);
 *   return model.score(texts);
 * };
 * ```
 */
export interface BisectionStep {
  /** The how-manieth `runBatch` call for this batch: 2 for the first retry (the first call was 1). */
  readonly call: number;
  /** How deep the split is: 1 for a half of the batch, 2 for a quarter, and so on. */
  readonly depth: number;
  /** The error of the failed call this part was cut from. */
  readonly cause: unknown;
}

/**
 * What a batch does when its `runBatch` call throws, rejects or errors:
 * - `'none'`: every caller of the batch fails with that error;
 * - `'bisect'`: the batch is split in halves, run one after the other, and a half that
 *   fails is split again, until the failing input is alone; every other caller gets its
 *   result. See the guide's errors page for the exact rule and its cost.
 */
export type IsolateFailures = 'none' | 'bisect';

/**
 * One result per input, matched by position: an array, a typed array, or any array-like
 * object such as `{ length: 2, 0: a, 1: b }` (an object: a string is not taken as its
 * characters). An `Error` at position *i* fails only caller *i*. A promise at position *i*
 * settles caller *i* when it settles, for items that finish at different times; the batch
 * keeps its slot until the last of them has.
 */
export type BatchResults<O> = ArrayLike<O | Error | PromiseLike<O>> & object;

/**
 * What `runBatch` may return: {@link BatchResults} (one result per input), or a Promise of
 * them, or an Observable whose first emission is them.
 */
export type BatchOutput<O> =
  | BatchResults<O>
  | PromiseLike<BatchResults<O>>
  | Observable<BatchResults<O>>;

/**
 * The function a batcher calls once per batch. Results are matched to callers by position:
 * `results[i]` answers `inputs[i]`. Throwing (or rejecting, or erroring) fails every caller in
 * the batch; the batcher keeps serving later requests.
 *
 * @example
 * ```ts
 * const runBatch: RunBatch<number, number> = (xs) => xs.map((x) => x * 2);
 * ```
 */
export type RunBatch<I, O> = (inputs: readonly I[], ctx: BatchContext) => BatchOutput<O>;

/**
 * The batching rules shared by {@link Batcher} and {@link batchMap}.
 *
 * @example
 * ```ts
 * const rules: BatchMapOptions<Features> = { maxBatchSize: 32, maxDelayMs: 5, maxQueueSize: 10_000 };
 * ```
 */
export interface BatchMapOptions<I> {
  /** The most inputs one `runBatch` call receives; an integer ≥ 1. caikit's `batch_size`. */
  readonly maxBatchSize: number;
  /**
   * The longest a request waits for companions, counted from the first request of its batch.
   * With 0, requests issued in the same synchronous run of code still share a batch.
   * caikit's `batch_collect_delay_s`, in milliseconds. At most 2^31-1 (about 24.8 days, the
   * longest timer Node runs); a larger value throws a `RangeError`.
   * @default 0
   */
  readonly maxDelayMs?: number;
  /**
   * How many batches may run at once; an integer ≥ 1, or `Infinity`.
   * @default 1
   */
  readonly maxConcurrentBatches?: number;
  /**
   * How many requests may wait in the queue (running ones do not count); beyond it a new
   * request is rejected at once with `QueueFullError`.
   * @default Infinity
   */
  readonly maxQueueSize?: number;
  /**
   * Per-request deadline in milliseconds, counted from `run()`; `RequestTimeoutError` when it
   * passes. A call can set its own with `run(x, { timeoutMs })`. Any length works: a
   * deadline beyond Node's 2^31-1 ms timer limit (about 24.8 days) is reached in steps.
   * @default Infinity (no deadline)
   */
  readonly timeoutMs?: number;
  /**
   * For object inputs: keys a caller omitted (absent or `undefined`) are filled from this
   * object before the input reaches `runBatch`. Falsy defaults work; the caller's object is
   * never mutated.
   */
  readonly defaults?: Partial<I>;
  /** Inputs with different keys never share a batch; FIFO order holds within a key. */
  readonly partitionBy?: (input: I) => string;
  /**
   * What one input costs the model (tokens of a text, pixels of an image, bytes): a finite
   * number ≥ 0, read once when the call arrives. With {@link maxBatchWeight}, a batch never
   * weighs more than the budget. Throwing or returning anything else fails that call alone.
   * Ray Serve's `batch_size_fn`.
   * @default every input weighs 1
   */
  readonly weigh?: (input: I) => number;
  /**
   * The most a batch may weigh in total (needs {@link weigh}). Inputs that do not fit wait
   * for the next batch, in order; an input heavier than the whole budget fails at `run()`
   * with a `RangeError`. `maxBatchSize` still applies.
   * @default Infinity
   */
  readonly maxBatchWeight?: number;
  /**
   * How fast a waiting call gains priority: one level (`run(x, { priority })`) per `agingMs` it
   * has waited. Calls are served by `arrival − priority × agingMs`, earliest first, so a call
   * of priority *p* is overtaken only by calls of priority *p + k* that arrived less than
   * *k × agingMs* after it, and no amount of higher-priority traffic starves it. `Infinity`:
   * strict priorities (a low priority may then wait forever).
   * @default 1000
   */
  readonly agingMs?: number;
  /**
   * Identical inputs share one model call: calls whose inputs have the same key (a string or a
   * finite number; `1` and `'1'` differ) while one of them waits or runs get that one result,
   * and `runBatch` sees the input once. Each caller still settles on its own: its abort or
   * deadline affects only itself, and the shared input is dropped (or its batch abandoned) only
   * when all its callers have gone. Nothing is cached: once the shared input has settled, the
   * next call runs it again. Keys are scoped to the `partitionBy` partition. `dedupeBy`
   * throwing or returning anything else fails that call alone. `stats().merged` counts the
   * calls that joined. DataLoader's `cacheKeyFn` without the cache.
   * @default no dedupe: every call is an input of its own
   */
  readonly dedupeBy?: (input: I) => string | number;
  /**
   * Say the latency you want instead of hand-picking `maxDelayMs`: the engine learns how long
   * the model takes per batch size while it runs, and waits for companions only as long as
   * keeps each request's queue wait + batch time under `p99Ms`, making batches as large as
   * that allows. `maxDelayMs` stays the hard cap (without one, it is `p99Ms`). Batches it cuts
   * early say `ctx.reason === 'target'`; `stats().latencyTarget` shows what it learned.
   * @default none (windows last `maxDelayMs`)
   */
  readonly latencyTarget?: LatencyTarget;
  /**
   * What happens when `runBatch` throws, rejects or errors (not when it returns a result of the
   * wrong length: that is a bug in `runBatch`, and fails the batch as before).
   * `'none'`: every caller of the batch fails with that error. `'bisect'`: the batch's inputs
   * are split in halves and retried, one half after the other, in the batch's own slot; a
   * half that fails is split again, until the failing input is alone and gets the model's
   * error, while every other caller gets its result. At most 2⌈log₂ n⌉ extra calls for a
   * batch of n. If both halves of a split fail (the model is down, or each half holds a
   * failing input), bisection stops at once and their callers fail with their half's error.
   * Deadlines and aborts apply to callers throughout; `stats().bisections` counts these
   * batches. Changeable with `configure()`.
   * @default 'none'
   */
  readonly isolateFailures?: IsolateFailures;
  /**
   * Names the batcher in error messages and stats.
   * @default 'batcher' ('batchMap' for the operator)
   */
  readonly name?: string;
  /**
   * The RxJS scheduler that times windows and deadlines. Pass a `TestScheduler` to drive
   * time virtually in tests.
   * @default asapScheduler for `maxDelayMs: 0` windows, asyncScheduler otherwise
   */
  readonly scheduler?: SchedulerLike;
}

/**
 * Options of `new Batcher(options)`: the batching rules plus the `runBatch` function.
 *
 * @example
 * ```ts
 * const options: BatcherOptions<string, number[]> = {
 *   name: 'embedder', maxBatchSize: 64, maxDelayMs: 2,
 *   runBatch: (texts, ctx) => model.embed(texts, { signal: ctx.signal }),
 * };
 * ```
 */
export interface BatcherOptions<I, O> extends BatchMapOptions<I> {
  /** Runs one batch. Required. */
  readonly runBatch: RunBatch<I, O>;
}

/**
 * Per-call options of `batcher.run(input, options)`.
 *
 * @example
 * ```ts
 * await batcher.run(x, { signal: AbortSignal.timeout(1000), timeoutMs: 200 });
 * ```
 */
export interface RunOptions {
  /** Aborting it removes a queued request (it never reaches `runBatch`) or drops a running one's result; the call rejects with `signal.reason`. */
  readonly signal?: AbortSignal;
  /**
   * This call's deadline in milliseconds from `run()`, overriding the batcher's `timeoutMs`
   * (longer or shorter); `Infinity` for no deadline even when the batcher has one.
   */
  readonly timeoutMs?: number;
  /**
   * An opaque value of this call (a trace id, a user, a tenant) that `runBatch` sees for each
   * input in `ctx.contexts` and that `results$` carries in the call's settlement. Across a
   * broker it travels with the request, encoded by the codec.
   */
  readonly context?: unknown;
  /**
   * This call's priority: an integer, higher runs first, FIFO within a level. A waiting call
   * gains one level per `agingMs` (a batcher option) it has waited, so a low priority is never
   * starved (see the guide's "Priorities" page for the bound). Across a broker it travels with
   * the request and the worker orders what it holds by it.
   * @default 0
   */
  readonly priority?: number;
}

/**
 * Options of `batcher.stop(options)`.
 *
 * @example
 * ```ts
 * await batcher.stop({ drain: true }); // finish everything queued, then stop
 * ```
 */
export interface StopOptions {
  /**
   * `true`: dispatch and finish everything queued first. `false`: reject queued requests with
   * `BatcherStoppedError`; running batches still finish and deliver.
   * @default false
   */
  readonly drain?: boolean;
}

/**
 * One request's outcome, shaped like a `Promise.allSettled` entry plus the request's `id` and
 * `input` (as `runBatch` received it: with `defaults`, the filled-in copy).
 *
 * @example
 * ```ts
 * batcher.results$.subscribe((s) => s.status === 'rejected' && log.warn(s.id, s.reason));
 * ```
 */
export type Settlement<I, O> = Fulfilled<I, O> | Rejected<I>;

/**
 * A request that succeeded, as emitted by `results$` and `batchMapSettled`.
 *
 * @example
 * ```ts
 * const s: Fulfilled<string, number> = { status: 'fulfilled', value: 3, id: 1, input: 'abc' };
 * ```
 */
export interface Fulfilled<I, O> {
  /** Always `'fulfilled'`. */
  readonly status: 'fulfilled';
  /** Its own result from `runBatch`. */
  readonly value: O;
  /** The request's id: unique within its batcher, counting from 1. */
  readonly id: number;
  /** The input, as `runBatch` received it. */
  readonly input: I;
  /** The call's `context` (`run(x, { context })`); absent when it gave none. */
  readonly context?: unknown;
}

/**
 * A request that failed, was cancelled, timed out or was refused, as emitted by `results$` and
 * `batchMapSettled`.
 *
 * @example
 * ```ts
 * const s: Rejected<string> = { status: 'rejected', reason: new Error('boom'), id: 2, input: 'x' };
 * ```
 */
export interface Rejected<I> {
  /** Always `'rejected'`. */
  readonly status: 'rejected';
  /** Why: the model's error, a batcher error, or the caller's `signal.reason`. */
  readonly reason: unknown;
  /** The request's id: unique within its batcher, counting from 1. */
  readonly id: number;
  /** The input, as `runBatch` received it. */
  readonly input: I;
  /** The call's `context` (`run(x, { context })`); absent when it gave none. */
  readonly context?: unknown;
}

/**
 * What happened to one finished batch; the newest is `stats().lastBatch`.
 *
 * @example
 * ```ts
 * batcher.stats$.subscribe(({ lastBatch }) => lastBatch && histogram.observe(lastBatch.durationMs / 1000));
 * ```
 */
export interface BatchReport {
  /** The batch's `ctx.batchId`. */
  readonly batchId: number;
  /** How many inputs it held (with `dedupeBy`, calls sharing an input count once). */
  readonly size: number;
  /** Why it was sealed. */
  readonly reason: DispatchReason;
  /** Its `partitionBy` key, if any. */
  readonly partition: string | undefined;
  /** `runBatch` returned results, failed, or was abandoned because every caller had gone. */
  readonly outcome: 'succeeded' | 'failed' | 'abandoned';
  /** From the `runBatch` call to its result, in ms of the batcher's scheduler clock. */
  readonly durationMs: number;
  /** For each input of the batch, the time it waited in the queue before `runBatch` was called (from the first call that brought it). */
  readonly queueWaitMs: readonly number[];
  /** Its `ctx.weight`: the sum of `weigh(input)`, or its size without `weigh`. */
  readonly weight: number;
  /**
   * For each input of the batch, its caller's `context` (`run(x, { context })`), or
   * `undefined`; with `dedupeBy`, that of the call that brought a shared input first.
   */
  readonly contexts: readonly unknown[];
}

/**
 * The objective of the `latencyTarget` option: how long a request may take, from `run()` to
 * its batch's result (queue wait + batch time), for 99% of requests.
 *
 * @example
 * ```ts
 * const target: LatencyTarget = { p99Ms: 20 };
 * ```
 */
export interface LatencyTarget {
  /** Milliseconds, a finite number > 0. */
  readonly p99Ms: number;
}

/**
 * The batching rules a batcher or worker applies now: what `configure()` can change.
 *
 * @example
 * ```ts
 * const { maxBatchSize, maxDelayMs } = batcher.stats().settings;
 * ```
 */
export interface BatchSettings {
  /** The most inputs per `runBatch` call. */
  readonly maxBatchSize: number;
  /** The longest a request waits for companions, from the oldest waiting request. */
  readonly maxDelayMs: number;
  /** Batches running at once. */
  readonly maxConcurrentBatches: number;
  /** Requests allowed to wait (a producer: sent and not yet answered); `Infinity`: no limit. */
  readonly maxQueueSize: number;
  /** The most a batch may weigh (`weigh`); `Infinity`: no budget. */
  readonly maxBatchWeight: number;
  /** A waiting call gains one priority level per this many ms; `Infinity`: strict priorities. */
  readonly agingMs: number;
  /** Present while a `latencyTarget` is in force. */
  readonly latencyTarget?: LatencyTarget;
  /** Present (as `'bisect'`) while failed batches are bisected; absent for the default, `'none'`. */
  readonly isolateFailures?: IsolateFailures;
}

/**
 * What `batcher.configure(options)` (and a worker's) can change at run time: the batching
 * rules, validated like the constructor's, applied from the next batch formed.
 *
 * @example
 * ```ts
 * batcher.configure({ maxBatchSize: 64, maxDelayMs: 2 });
 * ```
 */
export type ConfigureOptions = Partial<BatchSettings>;
