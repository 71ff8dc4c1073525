import type { Batch } from './batch';
import type { Partition } from './partition';

/* Request objects are created once per call, so they carry only what the engine needs. */

/** Lifecycle of a request inside the engine. Each request moves forward only. */
export const NEW = 0;
export const QUEUED = 1;
export const RUNNING = 2;
export const SETTLED = 3;

/** How a request ended, for stats. */
export type Outcome = 'succeeded' | 'failed' | 'cancelled' | 'timedOut' | 'rejected';


/**
 * One caller's request as the engine tracks it: a single object per call that carries the
 * input, its queue and batch position, its deadline and, once settled, its outcome. The
 * facade that created it (`Batcher.run`, `run$`, `batchMap`) decides in {@link deliver} how
 * the outcome reaches the caller. Keeping everything on one object keeps the hot path at one
 * allocation plus the caller's promise.
 */
export abstract class EngineRequest<I, O> {
  /** Unique within one engine, counting from 1; settlements are routed by it. */
  id = 0;
  state = NEW;
  /** The value given by the caller. */
  input: I;
  /** The value `runBatch` receives: `input` with `defaults` filled in. */
  batchInput: I;
  // Times are kept relative to the engine's start so they stay small integers: V8 then stores
  // them in the object itself instead of boxing a heap number per request.
  /** When it was enqueued, in ms since the engine started (window scheduler clock). */
  enqueuedAt = 0;
  /** Its deadline in ms since the engine started (deadline scheduler clock); 0 for none. */
  deadline = 0;
  /** Its own timeout in ms; 0 for none. */
  timeoutMs = 0;
  partition: Partition<I, O> | undefined = undefined;
  batch: Batch<I, O> | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  /** The listener registered on {@link signal}, removed when the request settles. */
  onAbort: (() => void) | undefined = undefined;
  /** Set when settled. */
  outcome: Outcome | undefined = undefined;
  /** The value when `outcome` is `'succeeded'`, otherwise the reason. */
  result: O | unknown = undefined;

  constructor(input: I) {
    this.input = input;
    this.batchInput = input;
  }

  /** Hands the settled outcome to the caller. Called exactly once, by the result router. */
  abstract deliver(): void;
}
