import DataLoader from 'dataloader';
import type { BatchingClient, BatchRules, BenchModel } from './types';

/**
 * DataLoader as its docs recommend for a non-caching batch loader: `cache: false`,
 * `maxBatchSize`, and the default same-tick scheduling; a time window, when the rules ask for
 * one, through `batchScheduleFn: (cb) => setTimeout(cb, ms)`.
 *
 * @example
 * ```ts
 * const client = dataloaderClient(model, { maxBatchSize: 64, maxDelayMs: 0 });
 * ```
 */
export function dataloaderClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  const delay = rules.maxDelayMs;
  const loader = new DataLoader<I, O>((keys) => model.runBatch(keys), {
    cache: false,
    maxBatchSize: rules.maxBatchSize,
    ...(delay > 0 ? { batchScheduleFn: (callback: () => void) => setTimeout(callback, delay) } : {}),
  });
  return {
    call: (input) => loader.load(input),
    close: () => undefined,
  };
}
