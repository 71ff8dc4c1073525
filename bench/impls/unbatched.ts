import type { BatchingClient, BenchModel } from './types';

/**
 * The floor: no batching, one model call (one promise) per request. For a trivial model this
 * is the physical limit of per-request overhead; for a real model it is what batching beats.
 *
 * @example
 * ```ts
 * const client = unbatchedClient(model);
 * ```
 */
export function unbatchedClient<I, O>(model: BenchModel<I, O>): BatchingClient<I, O> {
  return {
    call: (input) => model.runOne(input),
    close: () => undefined,
  };
}
