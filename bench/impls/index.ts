import { bareBatchingClient } from './bareBatching';
import { batshitClient } from './batshitClient';
import { dataloaderClient } from './dataloaderClient';
import { dropInClient } from './dropInClient';
import { promiseBatcherClient } from './promiseBatcherClient';
import { rxBatcherClient } from './rxBatcher';
import { rxjsBaselineClient } from './rxjsBaseline';
import type { BatchingClient, BatchRules, BenchModel } from './types';
import { unbatchedClient } from './unbatched';

export type { BatchingClient, BatchRules, BenchModel, CallOptions } from './types';

/**
 * The implementations a scenario can compare, by the name the report uses.
 *
 * @example
 * ```ts
 * for (const impl of IMPLEMENTATIONS) console.log(impl);
 * ```
 */
export const IMPLEMENTATIONS = ['rx-batcher', 'dataloader', 'promise-batcher', 'batshit', 'rxjs-baseline', 'unbatched'] as const;

/**
 * Drop-in replacements measured beside the library they replace, in scenario 1 only (at its
 * headline size): `rx-batcher/dataloader` against `dataloader`.
 *
 * @example
 * ```ts
 * for (const impl of DROP_INS) console.log(impl); // 'rx-batcher/dataloader'
 * ```
 */
export const DROP_INS = ['rx-batcher/dataloader'] as const;

/**
 * Floors measured beside the libraries in scenario 1 only (at its headline size):
 * `bare-batching`, the least a batching API returning a native promise per call can do
 * (see `bareBatchingClient`).
 *
 * @example
 * ```ts
 * for (const impl of FLOORS) console.log(impl); // 'bare-batching'
 * ```
 */
export const FLOORS = ['bare-batching'] as const;

/**
 * One of {@link IMPLEMENTATIONS} or {@link DROP_INS}.
 *
 * @example
 * ```ts
 * const impl: ImplName = 'dataloader';
 * ```
 */
export type ImplName = (typeof IMPLEMENTATIONS)[number] | (typeof DROP_INS)[number] | (typeof FLOORS)[number];

/**
 * Makes a client of the named implementation over `model`, following `rules`.
 *
 * @example
 * ```ts
 * const client = createClient('rx-batcher', model, { maxBatchSize: 64, maxDelayMs: 0 });
 * ```
 */
export function createClient<I, O>(name: ImplName, model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  switch (name) {
    case 'rx-batcher':
      return rxBatcherClient(model, rules);
    case 'dataloader':
      return dataloaderClient(model, rules);
    case 'rx-batcher/dataloader':
      return dropInClient(model, rules);
    case 'promise-batcher':
      return promiseBatcherClient(model, rules);
    case 'batshit':
      return batshitClient(model, rules);
    case 'rxjs-baseline':
      return rxjsBaselineClient(model, rules);
    case 'unbatched':
      return unbatchedClient(model);
    case 'bare-batching':
      return bareBatchingClient(model, rules);
    default:
      throw new TypeError(`unknown implementation "${String(name)}"; expected one of ${IMPLEMENTATIONS.join(', ')}`);
  }
}

/**
 * How the named implementation is configured for `rules`, in words, for the report.
 *
 * @example
 * ```ts
 * describeConfig('dataloader', { maxBatchSize: 64, maxDelayMs: 0 }); // 'cache: false, maxBatchSize: 64, default (same-tick) scheduling'
 * ```
 */
export function describeConfig(name: ImplName, rules: BatchRules): string {
  const n = rules.maxBatchSize;
  const d = rules.maxDelayMs;
  const window = d > 0 ? d : 1;
  switch (name) {
    case 'rx-batcher':
      return `new Batcher({ maxBatchSize: ${n}, maxDelayMs: ${d}${rules.maxConcurrentBatches !== undefined ? `, maxConcurrentBatches: ${rules.maxConcurrentBatches}` : ''} }) (maxConcurrentBatches ${rules.maxConcurrentBatches ?? 1})`;
    case 'dataloader':
      return `new DataLoader(fn, { cache: false, maxBatchSize: ${n}${d > 0 ? `, batchScheduleFn: cb => setTimeout(cb, ${d})` : ''} })${d > 0 ? '' : ' (default same-tick scheduling)'}`;
    case 'rx-batcher/dataloader':
      return `${describeConfig('dataloader', rules)}, with DataLoader imported from 'rx-batcher/dataloader'`;
    case 'promise-batcher':
      return `new Batcher({ batchingFunction, maxBatchSize: ${n}, queuingDelay: ${window} })`;
    case 'batshit':
      return `create({ fetcher → Map, resolver: map.get(q), scheduler: windowedFiniteBatchScheduler({ windowMs: ${window}, maxBatchSize: ${n} }) })`;
    case 'rxjs-baseline':
      return `Subject → bufferTime(${window}, null, ${n}) → filter(non-empty) → concatMap(runBatch) → one subscriber + Map by id`;
    case 'unbatched':
      return 'one model call (one promise) per request';
    case 'bare-batching':
      return `per call an input and its promise's resolve pushed onto arrays; at the end of the tick, model calls of ${n} (no options, checks or deadlines: a floor)`;
    default:
      return String(name);
  }
}
