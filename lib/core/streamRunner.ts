import { isObservable, Subscription, type SchedulerLike } from 'rxjs';
import { BatchResultError } from '../errors/BatchResultError.js';
import { describeValue } from '../errors/describe.js';
import type { BatchContext } from '../types.js';
import type { Batch } from './batch.js';
import type { BatchConfig } from './config.js';
import { RUNNING, type EngineRequest } from './request.js';
import { done, LastChunk, skip } from './steps.js';

/*
 * Streaming outputs, the engine's side (issue 11, part 1). A streaming batch does not answer
 * each caller once: its model produces *steps*, one slot per item (lib/core/steps.ts), and
 * each chunk goes to its caller as it comes. Two ways to produce them:
 *
 * - whole-batch ({@link runStepsBatch}): `runBatch(inputs, ctx)` returns an AsyncIterable or
 *   an Observable of steps; the batch keeps its slot until the stream ends (or every item is
 *   finished, or every caller has gone);
 * - continuous (lib/core/continuous.ts): the engine advances the active items one step at a
 *   time and, between two steps, retires finished ones and admits waiting requests into the
 *   free places.
 *
 * Every rule that is not about steps stays in the engine (admission, windows, deadlines,
 * cancellation, settle-exactly-once, stop): it reaches these runners through {@link StreamHost}.
 */

/** What a streaming batcher asks of its model: set by the face (StreamingBatcher), read by the engine. */
export type StreamModel<I> = StepsModel<I> | ContinuousModel<I>;

/** Whole-batch streaming: one `runBatch` call per batch, returning a stream of steps. */
export interface StepsModel<I> {
  readonly kind: 'steps';
  readonly runBatch: (inputs: readonly I[], ctx: BatchContext) => unknown;
  readonly counters: StreamCounters;
}

/** Continuous batching: items advance one step at a time; the batch's members change between steps. */
export interface ContinuousModel<I> {
  readonly kind: 'continuous';
  readonly init: (input: I) => unknown;
  readonly runStep: (states: unknown[], ctx: never) => unknown;
  readonly release: ((state: unknown) => void) | undefined;
  readonly counters: StreamCounters;
}

/** Live counters of a streaming batcher (its stats read them). */
export class StreamCounters {
  /** Steps applied (whole-batch and continuous). */
  steps = 0;
  /** Chunks delivered to callers still waiting. */
  chunks = 0;
  /** Requests admitted into a running continuous batch between two steps. */
  admitted = 0;
}

/**
 * What a waiting caller of a streaming batcher is: it takes chunks as they come, and says what
 * its request settles with once its output is finished (the chunks it collected, for `run()`).
 */
export interface ChunkReceiver<O> {
  chunk(value: unknown): void;
  output(): O;
}

/** The output a finished streaming request settles with. */
export function outputOf<O>(request: EngineRequest<unknown, O>): O {
  return (request as unknown as ChunkReceiver<O>).output();
}

/** The engine, as the stream runners see it. */
export interface StreamHost<I, O> {
  readonly config: BatchConfig<I, O>;
  /** The model finished one item (or failed it, `failed`): its caller settles. Never abandons the batch. */
  itemFinished(batch: Batch<I, O>, request: EngineRequest<I, O>, failed: boolean, error: unknown): void;
  /**
   * The batch's stream ended: `still` (callers still going) settle with their output, or all
   * with `error` when `failed`; the slot frees. Ignored once the batch is over.
   */
  streamEnded(batch: Batch<I, O>, still: readonly EngineRequest<I, O>[], failed: boolean, error: unknown): void;
  /** Continuous: up to `max` waiting requests of the batch's partition join it now. */
  admitInto(batch: Batch<I, O>, max: number): EngineRequest<I, O>[];
}

/**
 * Applies one slot of a step to its item's caller (which the caller must still be waiting
 * for): a chunk, nothing, done, a last chunk, or an `Error` that fails it alone.
 *
 * @example
 * ```ts
 * applySlot(host, batch, request, skip, counters); // nothing happens
 * ```
 */
export function applySlot<I, O>(host: StreamHost<I, O>, batch: Batch<I, O>, request: EngineRequest<I, O>, slot: unknown, counters: StreamCounters): void {
  if (slot === skip) return;
  if (slot === done) return host.itemFinished(batch, request, false, undefined);
  if (slot instanceof Error) return host.itemFinished(batch, request, true, slot);
  if (slot instanceof LastChunk) {
    deliver(request, slot.chunk, counters);
    // The chunk's receiver may have given up on it (a full buffer): then it has settled already.
    if (request.state === RUNNING) host.itemFinished(batch, request, false, undefined);
    return;
  }
  deliver(request, slot, counters);
}

function deliver(request: EngineRequest<unknown, unknown>, chunk: unknown, counters: StreamCounters): void {
  counters.chunks++;
  (request as unknown as ChunkReceiver<unknown>).chunk(chunk);
}

/**
 * Runs one whole-batch streaming batch: calls `runBatch` once and applies each step it
 * produces (an AsyncIterable is pulled one step at a time; an Observable is subscribed). The
 * stream ending finishes every item still going; its error (or `runBatch` throwing) fails them
 * all. Returns the subscription that stops the stream (`return()` on the iterator,
 * unsubscribe on the Observable): the engine ends it when the batch is over or abandoned.
 *
 * @example
 * ```ts
 * batch.inner = runStepsBatch(name, model, batch, host);
 * ```
 */
export function runStepsBatch<I, O>(name: string, model: StepsModel<I>, batch: Batch<I, O>, host: StreamHost<I, O>): Subscription | undefined {
  const run = new StepsRun(name, model, batch, host);
  let output: unknown;
  try {
    output = model.runBatch(batch.inputs(), batch);
  } catch (error) {
    run.fail(error);
    return undefined;
  }
  try {
    if (isObservable(output)) {
      run.subscription.add(output.subscribe({
        next: (step) => run.step(step),
        error: (error: unknown) => run.fail(error),
        complete: () => run.end(),
      }));
      return run.subscription;
    }
    if (isAsyncIterable(output)) {
      run.pull(output[Symbol.asyncIterator]());
      return run.subscription;
    }
  } catch (error) {
    run.fail(error);
    return run.subscription;
  }
  run.fail(new BatchResultError(name, batch.size, undefined, output, `a streaming batcher's runBatch must return an AsyncIterable (e.g. an async generator) or an Observable of steps, each with one slot per input, and it returned ${describeValue(output)}`));
  return undefined;
}

class StepsRun<I, O> {
  /** Ends the stream; unsubscribed by the engine when the batch is over. */
  readonly subscription = new Subscription(() => (this.stopped = true));
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly model: StepsModel<I>,
    private readonly batch: Batch<I, O>,
    private readonly host: StreamHost<I, O>,
  ) {}

  private get over(): boolean {
    return this.stopped || this.batch.done;
  }

  pull(iterator: AsyncIterator<unknown>): void {
    let finished = false; // it ended by itself: nothing to return()
    this.subscription.add(() => {
      if (finished) return;
      try {
        const returned = iterator.return?.();
        if (isThenable(returned)) returned.then(undefined, noop);
      } catch {
        // an iterator whose return() throws: it is being let go of anyway
      }
    });
    const next = (): void => {
      let pending: Promise<IteratorResult<unknown>>;
      try {
        pending = Promise.resolve(iterator.next());
      } catch (error) {
        return this.fail(error);
      }
      pending.then(
        (result) => {
          if (this.over) return;
          if (result.done === true) {
            finished = true;
            return this.end();
          }
          this.step(result.value);
          if (!this.over) next();
        },
        (error: unknown) => {
          if (!this.over) this.fail(error);
        },
      );
    };
    next();
  }

  step(slots: unknown): void {
    if (this.over) return;
    const batch = this.batch;
    const size = batch.size;
    let length: number | undefined;
    try {
      length = arrayLikeLength(slots);
    } catch (error) {
      return this.fail(error);
    }
    if (length !== size) {
      return this.fail(new BatchResultError(this.name, size, length, slots, length === undefined
        ? `each step must be an array with one slot per input, and one was ${describeValue(slots)}`
        : `a step had ${length} slots for ${size} inputs (slots are matched to callers by position)`));
    }
    this.model.counters.steps++;
    const requests = batch.requests;
    const s = slots as ArrayLike<unknown>;
    for (let i = 0; i < size; i++) {
      const request = requests[i];
      if (request.state !== RUNNING) continue; // finished, failed, or its caller left
      let slot: unknown;
      try {
        slot = s[i];
      } catch (error) {
        slot = error instanceof Error ? error : new Error(String(error));
      }
      applySlot(this.host, batch, request, slot, this.model.counters);
      if (this.over) return; // the last caller left while taking its chunk: the batch was abandoned
    }
    // Every item finished before the stream did: the batch is over, its stream is stopped.
    if (batch.live === 0) this.end();
  }

  end(): void {
    if (this.over) return;
    this.host.streamEnded(this.batch, this.batch.requests, false, undefined);
  }

  fail(error: unknown): void {
    if (this.over) return;
    this.host.streamEnded(this.batch, this.batch.requests, true, error);
  }
}

function noop(): void {}

/** May throw (a getter): the caller catches. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** Whether a value is an AsyncIterable (an async generator, a stream). */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/** The length of an array-like, or `undefined` when it is not one. May throw (a getter): the caller catches. */
export function arrayLikeLength(value: unknown): number | undefined {
  if (Array.isArray(value)) return value.length;
  if (typeof value !== 'object' || value === null) return undefined;
  const length = (value as { length?: unknown }).length;
  return typeof length === 'number' && Number.isInteger(length) && length >= 0 ? length : undefined;
}

/** The scheduler a continuous batch takes its next step on after a synchronous step (a macrotask by default, so timers and I/O run between steps). */
export function stepScheduler(config: BatchConfig<unknown, unknown>): SchedulerLike {
  return config.deadlineScheduler;
}
