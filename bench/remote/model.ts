/**
 * The models of the scale-out benchmark:
 * - `trivial`: 2x + 1 for each input, at once: every cost measured is transport overhead.
 * - `sim`: a simulated accelerator: it costs time but no CPU (a timer of 5 ms + 0.05 ms per
 *   item, one batch at a time, then 2x + 1 for each input). A worker process running it is
 *   idle while it waits, so several workers on one machine scale as they would on several GPUs.
 *
 * @example
 * ```ts
 * const kind: BenchModelKind = process.env.RXB_MODEL === 'sim' ? 'sim' : 'trivial';
 * ```
 */
export type BenchModelKind = 'trivial' | 'sim';

/**
 * The `sim` model's cost: one call takes `overheadMs + perItemMs × batch size`.
 *
 * @example
 * ```ts
 * const batchMs = SIM_MODEL.overheadMs + 64 * SIM_MODEL.perItemMs; // 8.2
 * ```
 */
export const SIM_MODEL = { overheadMs: 5, perItemMs: 0.05 } as const;

/**
 * What one `sim` model serves per second when every call is a full batch of `batchSize`:
 * its ceiling, the denominator of the "capacity fraction" rows.
 *
 * @example
 * ```ts
 * simCapacityPerSec(64); // ≈ 7805 (64 items per 8.2 ms)
 * ```
 */
export function simCapacityPerSec(batchSize: number): number {
  return (batchSize * 1000) / (SIM_MODEL.overheadMs + SIM_MODEL.perItemMs * batchSize);
}

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
    const turn = busyUntil.then(() => new Promise<void>((resolve) => setTimeout(resolve, SIM_MODEL.overheadMs + SIM_MODEL.perItemMs * inputs.length)));
    busyUntil = turn;
    return turn.then(() => inputs.map((x) => 2 * x + 1));
  };
}
