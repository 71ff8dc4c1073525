import { create, windowedFiniteBatchScheduler } from '@yornaath/batshit';
import type { BatchingClient, BatchRules, BenchModel } from './types';

/**
 * @yornaath/batshit with `windowedFiniteBatchScheduler({ windowMs, maxBatchSize })` (1 ms when
 * the rules ask for the same tick) and a keyed resolver: the fetcher returns a `Map` from
 * query to result. batshit de-duplicates equal queries, so scenarios give it distinct inputs.
 *
 * @example
 * ```ts
 * const client = batshitClient(model, { maxBatchSize: 64, maxDelayMs: 2 });
 * ```
 */
export function batshitClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  const batcher = create<Map<I, O | Error>, I, O>({
    fetcher: async (queries) => {
      const outputs = await model.runBatch(queries);
      const byQuery = new Map<I, O | Error>();
      for (let i = 0; i < queries.length; i++) byQuery.set(queries[i], outputs[i]);
      return byQuery;
    },
    resolver: (byQuery, query) => {
      const value = byQuery.get(query);
      if (value instanceof Error) throw value;
      return value as O;
    },
    scheduler: windowedFiniteBatchScheduler({ windowMs: rules.maxDelayMs > 0 ? rules.maxDelayMs : 1, maxBatchSize: rules.maxBatchSize }),
  });
  return {
    call: (input) => batcher.fetch(input),
    close: () => undefined,
  };
}
