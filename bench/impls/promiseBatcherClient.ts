import { Batcher as PromiseBatcher } from 'promise-batcher';
import type { BatchingClient, BatchRules, BenchModel } from './types';

/**
 * promise-batcher's `Batcher` with `maxBatchSize` and `queuingDelay` (its own default, 1 ms,
 * when the rules ask for the same tick: it has no same-tick mode).
 *
 * @example
 * ```ts
 * const client = promiseBatcherClient(model, { maxBatchSize: 64, maxDelayMs: 2 });
 * ```
 */
export function promiseBatcherClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  const batcher = new PromiseBatcher<I, O>({
    batchingFunction: (inputs) => model.runBatch(inputs) as Promise<Array<O | Error>>,
    maxBatchSize: rules.maxBatchSize,
    queuingDelay: rules.maxDelayMs > 0 ? rules.maxDelayMs : 1,
  });
  return {
    call: (input) => batcher.getResult(input),
    close: () => undefined,
  };
}
