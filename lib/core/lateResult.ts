/**
 * A slot of a batch's results may hold a promise: that caller settles when it settles, and the
 * batch keeps its slot until every such promise has. The remote producer answers this way (its
 * "runBatch" sends the batch to the broker and each reply arrives on its own), and so can any
 * model whose items finish at different times.
 *
 * A late result may carry a {@link CALLER_GONE} method: the engine calls it when the caller
 * settled first (aborted, timed out, stopped), so the producer forgets the request at once.
 */
export const CALLER_GONE: unique symbol = Symbol('rx-batcher.callerGone');

/** A promise in a result slot, optionally told when its caller has gone. */
export interface LateResult<O> extends PromiseLike<O> {
  [CALLER_GONE]?(): void;
  /** See {@link FAILED_WITH_CALL}. */
  readonly [FAILED_WITH_CALL]?: boolean;
}

/** Whether a slot holds a promise to wait for. A `then` getter may throw: the caller catches. */
export function isLateResult(value: unknown): value is LateResult<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Error) &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * Set to `true` on a late result whose rejection means its own `runBatch` call failed as a
 * whole (bisection's slots, lib/core/bisect.ts): its caller then fails as with a failed
 * batch (stats and the remote kind `'batch-failed'`), not as with an `Error` in its slot.
 */
export const FAILED_WITH_CALL: unique symbol = Symbol('rx-batcher.failedWithCall');
