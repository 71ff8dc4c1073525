/**
 * How big a batch a redelivered request may run in. A request delivered again was held by a
 * worker that crashed or stopped answering, perhaps because of an input beside it: running it
 * again in a batch as big as before could crash the next worker the same way, and charge every
 * innocent neighbour one more delivery each time, until they too reach `maxDeliveries`.
 *
 * So each delivery halves the batch it may run in, and the last allowed delivery runs alone:
 * a poison input is cut off from its neighbours within a few deliveries and is the only one
 * to reach `maxDeliveries`; every neighbour that does not crash alone is answered.
 *
 * | delivery | batch cap (maxBatchSize 64, maxDeliveries 5) |
 * |---|---|
 * | 1 | 64 (`maxBatchSize`) |
 * | 2 | 32 |
 * | 3 | 16 |
 * | 4 | 8 |
 * | 5 (the last) | 1 |
 *
 * @example
 * ```ts
 * redeliveryCap(3, 5, 64); // 16
 * redeliveryCap(5, 5, 64); // 1: the last run is alone
 * ```
 */
export function redeliveryCap(deliveries: number, maxDeliveries: number, maxBatchSize: number): number {
  if (deliveries <= 1) return Infinity;
  if (deliveries >= maxDeliveries) return 1;
  return Math.max(1, Math.floor(maxBatchSize / 2 ** (deliveries - 1)));
}
