import DataLoader = require('../../lib/dataloader');
import type { BatchingClient, BatchRules, BenchModel } from './types';

/**
 * rx-batcher's drop-in `DataLoader` (`rx-batcher/dataloader`) configured exactly as the
 * `dataloader` client is (`cache: false`, `maxBatchSize`, the default same-tick scheduling or
 * `batchScheduleFn: (cb) => setTimeout(cb, ms)`): what a DataLoader user gets by changing the import.
 *
 * @example
 * ```ts
 * const client = dropInClient(model, { maxBatchSize: 64, maxDelayMs: 0 });
 * ```
 */
export function dropInClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
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
