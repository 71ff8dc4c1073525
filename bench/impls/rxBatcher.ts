import { Batcher } from '../../lib';
import type { BatchingClient, BatchRules, BenchModel, CallOptions } from './types';

/**
 * rx-batcher's `Batcher`, configured with the scenario's rules and otherwise library defaults
 * (`maxConcurrentBatches: 1` unless the rules say otherwise).
 *
 * @example
 * ```ts
 * const client = rxBatcherClient(model, { maxBatchSize: 64, maxDelayMs: 0 });
 * ```
 */
export function rxBatcherClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> & { readonly batcher: Batcher<I, O> } {
  const batcher = new Batcher<I, O>({
    name: 'bench',
    runBatch: (inputs) => model.runBatch(inputs),
    maxBatchSize: rules.maxBatchSize,
    maxDelayMs: rules.maxDelayMs,
    ...(rules.maxConcurrentBatches !== undefined ? { maxConcurrentBatches: rules.maxConcurrentBatches } : {}),
  });
  return {
    batcher,
    call: (input: I, options?: CallOptions) => (options === undefined ? batcher.run(input) : batcher.run(input, options)),
    close: () => batcher.stop(),
  };
}
