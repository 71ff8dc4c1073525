import type { OperatorFunction } from 'rxjs';
import { toSettlement } from '../core/toSettlement.js';
import { BATCH_MAP_FACE, normalizeOptions } from '../options/normalizeOptions.js';
import type { BatchMapOptions, RunBatch, Settlement } from '../types.js';
import { orderedBatching } from './orderedBatching.js';

/**
 * Groups source values into `runBatch` calls and emits one result per value, **in source
 * order**, even with `maxConcurrentBatches > 1`.
 *
 * ```
 * source:  -a-b-c---d---|
 *          batchMap(runBatch, { maxBatchSize: 3, maxDelayMs: 5 })   // runBatch takes 2 frames
 * result:  -------(ABC)---(D|)
 * ```
 *
 * A batch is sealed when full, when its first value has waited `maxDelayMs`, or when the
 * source completes; while every slot is busy values keep queueing and the next batch takes up
 * to `maxBatchSize` of them. A failed item (thrown batch, `Error` in its slot, timeout) errors
 * the output stream, as RxJS operators do; use {@link batchMapSettled} to keep the pipeline
 * alive and receive each item's outcome instead. Invalid options throw at once.
 *
 * @example
 * ```ts
 * frames$.pipe(batchMap((xs) => model.predictBatch(xs), { maxBatchSize: 32, maxDelayMs: 5 }))
 *   .subscribe((score) => console.log(score));
 * ```
 * @param runBatch - called once per batch with its inputs; returns one result per input.
 * @param options - the batching rules (`maxBatchSize` is required).
 */
export function batchMap<T, R>(runBatch: RunBatch<T, R>, options: BatchMapOptions<T>): OperatorFunction<T, R> {
  const config = normalizeOptions<T, R>(options, runBatch, BATCH_MAP_FACE);
  return (source) =>
    orderedBatching<T, R, R>(source, config, (subscriber, request) => {
      if (request.outcome === 'succeeded') subscriber.next(request.result as R);
      else subscriber.error(request.result);
    });
}

/**
 * Like {@link batchMap}, but never errors because of an item: it emits every value's
 * {@link Settlement} (`{ status: 'fulfilled', value }` or `{ status: 'rejected', reason }`, plus
 * `id` and `input`), in source order. The stream errors only if the source does.
 *
 * @example
 * ```ts
 * frames$.pipe(batchMapSettled(runBatch, { maxBatchSize: 32 }))
 *   .subscribe((s) => (s.status === 'fulfilled' ? use(s.value) : log.warn(s.input, s.reason)));
 * ```
 * @param runBatch - called once per batch with its inputs; returns one result per input.
 * @param options - the batching rules (`maxBatchSize` is required).
 */
export function batchMapSettled<T, R>(
  runBatch: RunBatch<T, R>,
  options: BatchMapOptions<T>,
): OperatorFunction<T, Settlement<T, R>> {
  const config = normalizeOptions<T, R>(options, runBatch, BATCH_MAP_FACE);
  return (source) =>
    orderedBatching<T, R, Settlement<T, R>>(source, config, (subscriber, request) => {
      subscriber.next(toSettlement(request));
    });
}
