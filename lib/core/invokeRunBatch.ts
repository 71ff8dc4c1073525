import { isObservable, take, type Subscription } from 'rxjs';
import { BatchResultError } from '../errors/BatchResultError.js';
import type { BatchContext, RunBatch } from '../types.js';
import { isAsyncIterable } from './streamRunner.js';

/** A plain batcher given a stream of steps: say where streaming lives. */
const STREAM_HINT = 'it returned an AsyncIterable (a stream): for streaming outputs use `new StreamingBatcher({ runBatch })` (batchMap and the remote faces do not stream outputs)';

/** Receives the one outcome of a `runBatch` call. */
export interface BatchOutcome {
  /** `runBatch` produced one result per input (checked). */
  returned(results: ArrayLike<unknown>): void;
  /** It threw, rejected, errored, or broke the result contract. */
  failed(error: unknown): void;
}

/**
 * Calls `runBatch` once and reports exactly one outcome, whatever it returns: an array-like
 * (synchronously), a Promise, or an Observable (its first emission). Checks the result's shape
 * and length, so callers are matched to results by position only when that is safe.
 * Returns the subscription to an Observable result, to cancel it when nobody waits any more.
 *
 * @example
 * ```ts
 * invokeRunBatch('ranker', runBatch, inputs, ctx, { returned: deliver, failed: failAll });
 * ```
 */
export function invokeRunBatch<I, O>(
  name: string,
  runBatch: RunBatch<I, O>,
  inputs: I[],
  ctx: BatchContext,
  outcome: BatchOutcome,
): Subscription | undefined {
  const expected = inputs.length;
  let reported = false;
  const returned = (results: unknown): void => {
    if (reported) return;
    reported = true;
    let ok = false;
    let problem: unknown;
    try {
      // A Proxy or a `length` getter can throw right here; so can describing a hostile value.
      const length = arrayLikeLength(results);
      if (length === expected) ok = true;
      else if (length === undefined && isAsyncIterable(results)) problem = new BatchResultError(name, expected, undefined, results, STREAM_HINT);
      else if (length === undefined) problem = new BatchResultError(name, expected, undefined, results);
      else problem = new BatchResultError(name, expected, length);
    } catch (error) {
      problem = error;
    }
    if (ok) outcome.returned(results as ArrayLike<unknown>);
    else outcome.failed(problem);
  };
  const failed = (error: unknown): void => {
    if (reported) return;
    reported = true;
    outcome.failed(error);
  };

  let output: unknown;
  try {
    output = runBatch(inputs, ctx);
  } catch (error) {
    failed(error);
    return undefined;
  }
  // Looking at what came back may itself throw (a `then` getter, a thenable whose `then`
  // throws): that fails the batch, like a rejection, instead of escaping to the process.
  try {
    if (isObservable(output)) {
      return output.pipe(take(1)).subscribe({
        next: returned,
        error: failed,
        complete: () => failed(new BatchResultError(name, expected, undefined, undefined, 'the Observable it returned completed without emitting')),
      });
    }
    if (isThenable(output)) output.then(returned, failed);
    else returned(output);
  } catch (error) {
    failed(error);
  }
  return undefined;
}

/** May throw (a `then` getter): the caller catches. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * The length of an array-like result, read once, or `undefined` when it is not one. Every
 * `ArrayLike` object is accepted, as the type of `runBatch` promises: arrays, typed arrays (a
 * model's `Float32Array` of scores), `{ length: 2, 0: a, 1: b }`. Not strings: the type asks
 * for an object. May throw (a `length` getter): the caller catches.
 */
function arrayLikeLength(value: unknown): number | undefined {
  if (Array.isArray(value)) return value.length;
  if (typeof value !== 'object' || value === null) return undefined;
  const length = (value as { length?: unknown }).length;
  return typeof length === 'number' && Number.isInteger(length) && length >= 0 ? length : undefined;
}
