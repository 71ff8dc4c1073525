/**
 * The median of some numbers (the mean of the middle two for an even count); NaN when empty.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return Number.NaN;
  const middle = finite.length >> 1;
  return finite.length % 2 === 1 ? finite[middle] : (finite[middle - 1] + finite[middle]) / 2;
}

/**
 * The p-th percentile (0..100, nearest rank) of some numbers; NaN when empty.
 * Sorts a copy, so typed arrays of latencies can be passed as they are.
 *
 * @example
 * ```ts
 * percentile(Float64Array.from([5, 1, 3]), 50); // 3
 * ```
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * The arithmetic mean; NaN when empty.
 *
 * @example
 * ```ts
 * mean([1, 2, 3]); // 2
 * ```
 */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}
