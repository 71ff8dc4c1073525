import { Observable, type Subscriber } from 'rxjs';
import type { BatchConfig } from '../core/config.js';
import { EngineRequest, SUCCEEDED } from '../core/request.js';
import type { ContinuousBatching, Step } from '../core/steps.js';
import { StreamCounters, type ChunkReceiver, type StreamModel } from '../core/streamRunner.js';
import { describeValue, prefix } from '../errors/describe.js';
import { fail, normalizeOptions, PREBUILT_CONFIG, reconfigured, STREAMING_FACE, type Prebuilt } from '../options/normalizeOptions.js';
import type { BatcherStats } from '../stats/statsSnapshot.js';
import type { BatchContext, BatcherOptions, BatchMapOptions, RunOptions } from '../types.js';
import { Batcher, faceAccess } from './Batcher.js';
import { ChunkStreamImpl, type ChunkSink, type ChunkStream } from './ChunkStream.js';

/**
 * A streaming `runBatch`: called once per batch, it returns the batch's steps as an
 * AsyncIterable (an async generator) or an Observable. Each step has one slot per input (see
 * {@link Step}). The stream ending finishes every item still going; throwing, rejecting or
 * erroring fails them all.
 *
 * @example
 * ```ts
 * const runBatch: StreamingRunBatch<string, string> = async function* (prompts, ctx) {
 *   for (let i = 0; i < 3 && !ctx.signal.aborted; i++) yield prompts.map((p) => `${p}:${i}`);
 * };
 * ```
 */
export type StreamingRunBatch<I, C> = (inputs: readonly I[], ctx: BatchContext) => AsyncIterable<Step<C>> | Observable<Step<C>>;

/**
 * Options of `new StreamingBatcher(options)`: the batching rules, then exactly one of
 * `runBatch` (whole-batch streaming) or `continuous` (continuous batching).
 *
 * @example
 * ```ts
 * const options: StreamingBatcherOptions<string, string> = {
 *   maxBatchSize: 64, maxDelayMs: 2, maxBufferedChunks: 256,
 *   continuous: { init: (prompt) => ({ prompt, n: 0 }), runStep: (states) => states.map((s) => (s.n++ < 3 ? 'tok' : done)) },
 * };
 * ```
 */
export type StreamingBatcherOptions<I, C> = StreamingRules &
  (
    | {
        /** Whole-batch streaming: one call per batch returns its steps. */
        readonly runBatch: StreamingRunBatch<I, C>;
        /** Not with `runBatch`. */
        readonly continuous?: undefined;
      }
    | {
        /** Continuous batching: items advance one step at a time and join or leave between steps. */
        // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each model has its own state type
        readonly continuous: ContinuousBatching<I, C, any>;
        /** Not with `continuous`. */
        readonly runBatch?: undefined;
      }
  ) &
  Omit<BatchMapOptions<I>, 'dedupeBy'>;

/**
 * The options only a streaming batcher has.
 *
 * @example
 * ```ts
 * const rules: StreamingRules = { maxBufferedChunks: 256 };
 * ```
 */
export interface StreamingRules {
  /**
   * How many chunks a `for await` reader of `stream()` may leave unread; beyond that its stream
   * ends with `StreamBufferFullError` and its item leaves the batch (the model never waits for
   * one slow reader). An integer ≥ 1, or `Infinity`. `stream(x, { maxBufferedChunks })` sets it
   * per call. Observable subscribers get each chunk as it is produced and are not buffered.
   * @default 1000
   */
  readonly maxBufferedChunks?: number;
}

/**
 * Per-call options of `batcher.stream(input, options)`: those of `run()`, and the call's own
 * `maxBufferedChunks`.
 *
 * @example
 * ```ts
 * for await (const t of batcher.stream(prompt, { signal: req.signal, maxBufferedChunks: 64 })) res.write(t);
 * ```
 */
export interface StreamOptions extends RunOptions {
  /** This call's `maxBufferedChunks` (see {@link StreamingRules.maxBufferedChunks}). */
  readonly maxBufferedChunks?: number;
}

/**
 * Stats of a streaming batcher: those of every batcher, plus the steps taken and chunks
 * delivered. With `continuous`, `batches` counts running loops, and `admittedBetweenSteps`
 * the requests that joined a loop already running.
 *
 * @example
 * ```ts
 * const { chunks, steps, admittedBetweenSteps } = batcher.stats();
 * ```
 */
export interface StreamingBatcherStats extends BatcherStats {
  /** Steps applied (each step advances every item of its batch once). */
  readonly steps: number;
  /** Chunks delivered to callers. */
  readonly chunks: number;
  /** Requests that joined a continuous batch between two of its steps (not counted in `batchSizes`). */
  readonly admittedBetweenSteps: number;
}

const DEFAULT_MAX_BUFFERED_CHUNKS = 1000;
const NO_CHUNKS: readonly never[] = Object.freeze([]);

/**
 * A batcher for models that produce each caller's output piece by piece (tokens, audio
 * chunks, partial transcripts). Same engine, rules and options as {@link Batcher} (windows,
 * slots, deadlines, aborts, `maxQueueSize`, priorities, stats, `stop()`), plus:
 *
 * - `stream(input)`: the caller's chunks as they come, an Observable that is also an
 *   AsyncIterable (`for await`); `run(input)` resolves with all of them, in an array.
 * - **whole-batch streaming** (`runBatch`): one call per batch returns an AsyncIterable or an
 *   Observable of steps; the batch holds its slot until its stream ends. Streaming is opt-in
 *   through this class (a plain `Batcher` takes an Observable's first emission as the whole
 *   result, and keeps doing so).
 * - **continuous batching** (`continuous: { init, runStep, release? }`): items advance one step
 *   at a time, and between two steps finished items leave and waiting requests join, up to
 *   `maxBatchSize`, so a long output never holds short ones hostage.
 *
 * A caller who unsubscribes, leaves its `for await`, aborts or times out stops receiving at
 * once and its item is dropped from the batch; when every caller of a batch has gone, its
 * `ctx.signal` aborts. `stop()` rejects what is queued, while streams in progress go on until
 * their model finishes them (`ctx.signal` aborts, so a model that honours it can end them
 * early); `stop({ drain: true })` finishes everything queued too. Each call settles exactly once.
 *
 * Not with `dedupeBy` (each caller has its own stream), `latencyTarget` (a streaming batch
 * lasts as long as its longest output) or `isolateFailures: 'bisect'` (a failed stream's items
 * may have sent chunks already), nor `weigh` with `continuous`.
 *
 * @example
 * ```ts
 * import { StreamingBatcher, done, type ContinuousBatching } from 'rx-batcher';
 * const model: ContinuousBatching<string, string, { word: string; at: number }> = {
 *   init: (word) => ({ word, at: 0 }),
 *   runStep: (states) => states.map((s) => (s.at < s.word.length ? s.word[s.at++] : done)),
 * };
 * const spell = new StreamingBatcher<string, string>({ maxBatchSize: 64, continuous: model });
 * for await (const letter of spell.stream('hello')) console.log(letter); // h, e, l, l, o
 * console.log(await spell.run('abc')); // [ 'a', 'b', 'c' ]
 * ```
 */
export class StreamingBatcher<I, C> extends Batcher<I, C[]> {
  readonly #counters: StreamCounters;
  readonly #maxBufferedChunks: number;

  /**
   * @param options - the batching rules and the model; invalid ones throw a `TypeError` or
   * `RangeError` naming the option and the value.
   */
  constructor(options: StreamingBatcherOptions<I, C>) {
    const counters = new StreamCounters();
    const { prebuilt, maxBufferedChunks } = streamingConfig<I, C>(options, counters);
    super({ [PREBUILT_CONFIG]: prebuilt } as unknown as BatcherOptions<I, C[]>);
    this.#counters = counters;
    this.#maxBufferedChunks = maxBufferedChunks;
  }

  /**
   * The caller's chunks as the model produces them: a cold Observable that is also an
   * AsyncIterable. Nothing is sent until you subscribe (or start a `for await`); unsubscribing
   * or leaving the loop cancels the request and drops its item from its batch. It completes
   * when the model finishes the item and errors with the item's own error, the batch's, or a
   * batcher error (`QueueFullError`, `RequestTimeoutError` — `timeoutMs` bounds the whole
   * stream —, `BatcherStoppedError`, `StreamBufferFullError`, or the signal's reason).
   *
   * @example
   * ```ts
   * for await (const token of batcher.stream(prompt, { signal: req.signal })) res.write(token);
   * ```
   */
  stream(input: I, options?: StreamOptions): ChunkStream<C> {
    let limit = this.#maxBufferedChunks;
    let runOptions: RunOptions | undefined = options;
    let refusal: Error | undefined;
    if (options !== undefined && options !== null && typeof options === 'object' && 'maxBufferedChunks' in options) {
      const { maxBufferedChunks, ...rest } = options;
      runOptions = rest;
      if (maxBufferedChunks !== undefined) {
        const checked = checkBufferLimit(this.name, 'stream(input, options): `maxBufferedChunks`', maxBufferedChunks);
        if (typeof checked === 'number') limit = checked;
        else refusal = checked;
      }
    }
    return new ChunkStreamImpl<C>((sink) => {
      const request = new SinkRequest<I, C>(input, sink);
      if (refusal !== undefined) {
        faceAccess.refuse(this, request, refusal);
        return noop;
      }
      faceAccess.admit(this, request, runOptions);
      return (reason) => {
        if (request.isSettled) return;
        faceAccess.cancel(this, request, reason ?? new DOMException(`${prefix(this.name)} stream() was unsubscribed.`, 'AbortError'));
      };
    }, limit, this.name);
  }

  /**
   * Runs one input and resolves with all of its chunks, in order, once the model has finished
   * it (a rejection, like `run()` on any batcher, otherwise).
   *
   * @example
   * ```ts
   * const tokens = await batcher.run(prompt, { timeoutMs: 30_000 });
   * ```
   */
  override run(input: I, options?: RunOptions): Promise<C[]> {
    return new Promise<C[]>((resolve, reject) => {
      faceAccess.admit(this, new CollectingRequest<I, C>(input, resolve, reject), options);
    });
  }

  /**
   * Like {@link run}, as a cold Observable that emits the array of chunks once; unsubscribing
   * first cancels the request.
   *
   * @example
   * ```ts
   * batcher.run$(prompt).subscribe((tokens) => console.log(tokens.join('')));
   * ```
   */
  override run$(input: I, options?: RunOptions): Observable<C[]> {
    return new Observable<C[]>((subscriber: Subscriber<C[]>) => {
      const request = new CollectingRequest<I, C>(
        input,
        (chunks) => {
          subscriber.next(chunks);
          subscriber.complete();
        },
        (reason) => subscriber.error(reason),
      );
      faceAccess.admit(this, request, options);
      return () => {
        if (!request.isSettled) faceAccess.cancel(this, request, new DOMException(`${prefix(this.name)} run$() was unsubscribed.`, 'AbortError'));
      };
    });
  }

  /**
   * The current stats (see {@link StreamingBatcherStats}).
   *
   * @example
   * ```ts
   * console.log(batcher.stats().chunks);
   * ```
   */
  override stats(): StreamingBatcherStats {
    const c = this.#counters;
    return Object.freeze({ ...super.stats(), steps: c.steps, chunks: c.chunks, admittedBetweenSteps: c.admitted });
  }
}

/** A `run()` / `run$()` call on a streaming batcher: collects its chunks and settles with them. */
class CollectingRequest<I, C> extends EngineRequest<I, C[]> implements ChunkReceiver<C[]> {
  private readonly chunks: C[] = [];

  constructor(
    input: I,
    private readonly resolve: (chunks: C[]) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    super(input);
  }

  chunk(value: unknown): void {
    this.chunks.push(value as C);
  }

  output(): C[] {
    return this.chunks;
  }

  deliver(): void {
    if (this.state === SUCCEEDED) this.resolve(this.result as C[]);
    else this.reject(this.result);
  }
}

/**
 * A `stream()` call: each chunk goes straight to its sink. Its chunks are not kept, so its
 * settlement in `results$` carries an empty array.
 */
class SinkRequest<I, C> extends EngineRequest<I, C[]> implements ChunkReceiver<C[]> {
  constructor(
    input: I,
    private readonly sink: ChunkSink<C>,
  ) {
    super(input);
  }

  chunk(value: unknown): void {
    this.sink.next(value as C);
  }

  output(): C[] {
    return NO_CHUNKS as unknown as C[];
  }

  deliver(): void {
    if (this.state === SUCCEEDED) this.sink.complete();
    else this.sink.error(this.result);
  }
}

function noop(): void {}

/** An integer ≥ 1 or Infinity, or the error naming `what`. */
function checkBufferLimit(name: string, what: string, value: unknown): number | Error {
  if (value === Infinity || (typeof value === 'number' && Number.isInteger(value) && value >= 1)) return value;
  const message = `${prefix(name)} ${what} must be an integer ≥ 1 or Infinity (how many chunks a for await reader may leave unread), got ${describeValue(value)}.`;
  return typeof value === 'number' ? new RangeError(message) : new TypeError(message);
}

/** Validates a streaming batcher's options into the engine's config (the streaming model included). */
function streamingConfig<I, C>(options: StreamingBatcherOptions<I, C>, counters: StreamCounters): { prebuilt: Prebuilt<I, C[]>; maxBufferedChunks: number } {
  // Bad option types and unknown keys first, with every face's messages.
  const o = (typeof options === 'object' && options !== null ? options : {}) as Record<string, unknown>;
  const runBatch = o.runBatch;
  const continuous = o.continuous;
  const placeholder = (): never => {
    throw new Error('unreachable: a continuous batcher has no runBatch');
  };
  const config = normalizeOptions<I, C[]>(options, continuous !== undefined && runBatch === undefined ? placeholder : runBatch, STREAMING_FACE);
  const name = config.name;
  const model = streamModel<I>(name, runBatch, continuous, counters);
  if (config.dedupeBy !== undefined) {
    fail('type', name, '`dedupeBy` cannot be used with streaming outputs: each caller has a stream of its own, which identical calls cannot share. Drop dedupeBy (or dedupe upstream).');
  }
  if (config.latencyTarget !== undefined) {
    fail('type', name, '`latencyTarget` cannot be used with streaming outputs: it learns how long a batch takes to answer, and a streaming batch lasts as long as its longest output. Set maxDelayMs instead.');
  }
  const noBisection = (c: BatchConfig<I, C[]>): BatchConfig<I, C[]> => {
    if (c.isolateFailures !== 'none') {
      fail('type', name, "`isolateFailures: 'bisect'` cannot be used with streaming outputs: callers may already have chunks of a stream that failed, so its items cannot be run again apart. Put an Error in the failing item's slot of a step instead: it ends that caller alone.");
    }
    return c;
  };
  noBisection(config);
  if (model.kind === 'continuous' && (config.weigh !== undefined || config.maxBatchWeight !== Infinity)) {
    fail('type', name, '`weigh` and `maxBatchWeight` are not supported with `continuous` yet (items join a running batch by count, up to maxBatchSize). Use whole-batch streaming (`runBatch`) for weight budgets, or bound maxBatchSize.');
  }
  let maxBufferedChunks = DEFAULT_MAX_BUFFERED_CHUNKS;
  if (o.maxBufferedChunks !== undefined) {
    const checked = checkBufferLimit(name, '`maxBufferedChunks`', o.maxBufferedChunks);
    if (typeof checked !== 'number') throw checked;
    maxBufferedChunks = checked;
  }
  const withModel = (c: BatchConfig<I, C[]>): BatchConfig<I, C[]> => Object.freeze({ ...c, stream: model });
  const rebuild = (changes: unknown): BatchConfig<I, C[]> =>
    withModel(noBisection(reconfigured<I, C[]>(name, o, changes, config.runBatch, STREAMING_FACE)));
  return { prebuilt: { config: withModel(config), rebuild }, maxBufferedChunks };
}

function streamModel<I>(name: string, runBatch: unknown, continuous: unknown, counters: StreamCounters): StreamModel<I> {
  if (runBatch !== undefined && continuous !== undefined) {
    fail('type', name, 'give either `runBatch` (whole-batch streaming: one call per batch returns its steps) or `continuous` (items advance one step at a time and join or leave between steps), not both.');
  }
  if (continuous === undefined) {
    // normalizeOptions has checked that runBatch is a function.
    return Object.freeze({ kind: 'steps', runBatch: runBatch as StepsRunBatch<I>, counters });
  }
  if (typeof continuous !== 'object' || continuous === null) {
    fail('type', name, `\`continuous\` must be an object { init(input) => state, runStep(states, ctx) => step, release?(state) }, got ${describeValue(continuous)}.`);
  }
  const { init, runStep, release } = continuous as Record<string, unknown>;
  if (typeof init !== 'function') fail('type', name, `\`continuous.init\` must be a function (input) => state, got ${describeValue(init)}.`);
  if (typeof runStep !== 'function') fail('type', name, `\`continuous.runStep\` must be a function (states, ctx) => step (one slot per state), got ${describeValue(runStep)}.`);
  if (release !== undefined && typeof release !== 'function') fail('type', name, `\`continuous.release\` must be a function (state) => void, got ${describeValue(release)}.`);
  const model = continuous as ContinuousBatching<I, unknown, unknown>;
  return Object.freeze({
    kind: 'continuous',
    init: (input: I) => model.init(input),
    runStep: (states: unknown[], ctx: never) => model.runStep(states, ctx),
    release: release === undefined ? undefined : (state: unknown) => model.release!(state),
    counters,
  });
}

type StepsRunBatch<I> = (inputs: readonly I[], ctx: BatchContext) => unknown;
