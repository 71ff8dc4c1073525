import type { BatchContext, BatchOutput, RunBatch } from './types.js';

/**
 * One array per field, aligned by batch position: caikit's `run_batch(**kwargs)` shape.
 * A field missing from some inputs holds `undefined` at their positions.
 */
export type Columns<I> = { [K in keyof I]-?: Array<I[K]> };

/**
 * Turns a batch of objects into one array per field (keys in order of first appearance).
 *
 * @example
 * ```ts
 * toColumns([{ text: 'a', lang: 'en' }, { text: 'b', lang: 'fr' }]);
 * // { text: ['a', 'b'], lang: ['en', 'fr'] }
 * ```
 */
export function toColumns<I extends object>(inputs: readonly I[]): Columns<I> {
  const columns: Record<string, unknown[]> = {};
  const n = inputs.length;
  for (let i = 0; i < n; i++) {
    const input = inputs[i] as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      let column = columns[key];
      if (column === undefined) column = columns[key] = new Array<unknown>(n).fill(undefined);
      column[i] = input[key];
    }
  }
  return columns as Columns<I>;
}

/**
 * Adapts a batch function that takes columns (one array per field, like caikit's
 * `run_batch`) into a {@link RunBatch} that takes one object per request. Combine it with
 * `defaults` so every column is complete.
 *
 * @example
 * ```ts
 * const batcher = new Batcher<{ text: string; lang?: string }, string>({
 *   maxBatchSize: 16,
 *   defaults: { lang: 'en' },
 *   runBatch: columnar(({ text, lang }) => model.translate(text, lang)),
 * });
 * ```
 */
export function columnar<I extends object, O>(
  runColumns: (columns: Columns<I>, ctx: BatchContext) => BatchOutput<O>,
): RunBatch<I, O> {
  return (inputs, ctx) => runColumns(toColumns(inputs), ctx);
}
