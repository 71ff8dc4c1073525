/**
 * The models of the scale-out benchmark:
 * - `trivial`: 2x + 1 for each input, at once: every cost measured is transport overhead.
 * - `sim`: a simulated accelerator, one call at a time, 5 ms + 0.05 ms per item.
 *
 * @example
 * ```ts
 * const kind: BenchModelKind = process.env.RXB_MODEL === 'sim' ? 'sim' : 'trivial';
 * ```
 */
export type BenchModelKind = 'trivial' | 'sim';

/**
 * A benchmark model as a `runBatch` function.
 *
 * @example
 * ```ts
 * const runBatch = benchModel('sim');
 * await runBatch([1, 2, 3]); // ≈ 5.15 ms later: [3, 5, 7]
 * ```
 */
export function benchModel(kind: BenchModelKind): (inputs: readonly number[]) => Promise<number[]> {
  if (kind === 'trivial') return async (inputs) => inputs.map((x) => 2 * x + 1);
  let busyUntil = Promise.resolve();
  return (inputs) => {
    const turn = busyUntil.then(() => new Promise<void>((resolve) => setTimeout(resolve, 5 + 0.05 * inputs.length)));
    busyUntil = turn;
    return turn.then(() => inputs.map((x) => 2 * x + 1));
  };
}
