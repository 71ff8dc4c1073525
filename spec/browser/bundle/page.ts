/**
 * The page of the bundle test: `Batcher` and `batchMap` from the package's root entry, with a
 * fake model, in a browser. It leaves what it saw on `window.rxBatcherResult` (or the error on
 * `window.rxBatcherError`).
 */
import { Batcher, batchMap, type BatchContext } from 'rx-batcher';
import { from, lastValueFrom, toArray } from 'rxjs';

const square = async (xs: readonly number[]): Promise<number[]> => xs.map((x) => x * x);

async function main(): Promise<unknown> {
  const sizes: number[] = [];
  const batcher = new Batcher<number, number>({
    maxBatchSize: 4,
    maxDelayMs: 5,
    runBatch: (xs, ctx: BatchContext) => {
      sizes.push(ctx.size);
      return square(xs);
    },
  });
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.run(i + 1)));
  await batcher.stop({ drain: true });
  const mapped = await lastValueFrom(from([1, 2, 3, 4, 5, 6, 7]).pipe(batchMap(square, { maxBatchSize: 3 }), toArray()));
  return { results, sizes, mapped, stats: { batches: batcher.stats().batches, succeeded: batcher.stats().succeeded } };
}

const w = window as unknown as { rxBatcherResult?: unknown; rxBatcherError?: string };
main().then((r) => (w.rxBatcherResult = r), (e: unknown) => (w.rxBatcherError = String(e instanceof Error ? e.stack : e)));
