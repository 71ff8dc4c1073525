/**
 * Recipe: `batchMap` inside an RxJS pipeline over a real Node stream.
 *
 * A text file of sensor readings (one number per line) is read with `fs.createReadStream`,
 * split into lines with `readline`, and every reading goes through a batched "model". The
 * output comes out in file order even though batches run concurrently and finish out of
 * order, the pipeline completes when the file ends, and a bad line fails only itself.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { batchMap, batchMapSettled, type RunBatch } from 'rx-batcher';

/** What the pipeline reports: one line per reading, in file order, and the batches it formed. */
export interface PipelineReport {
  /** `"<line number>: <score>"`, or `"<line number>: skipped (<reason>)"` for a bad line. */
  readonly lines: string[];
  /** The size of each batch the model received, in dispatch order. */
  readonly batchSizes: number[];
}

/** Options of {@link scoreReadingsFile}. */
export interface PipelineOptions {
  /** The most readings per model call. */
  readonly maxBatchSize?: number;
  /** Model calls allowed to run at once: their results still come out in file order. */
  readonly maxConcurrentBatches?: number;
  /** How long a reading waits for companions; the last batch goes when the file ends. Default 2 ms. */
  readonly maxDelayMs?: number;
}

/**
 * A stand-in for a batched model: scores each reading (its square) after a delay that varies
 * per batch, so later batches often finish before earlier ones. A reading that is not a
 * finite number gets an `Error` in its slot, which fails only that reading.
 *
 * @example
 * ```ts
 * const [runBatch, sizes] = makeScoringModel();
 * await runBatch(['2', 'x'], ctx); // [4, Error('not a number: "x"')] after a few ms
 * ```
 */
export function makeScoringModel(): [RunBatch<string, number>, number[]] {
  const batchSizes: number[] = [];
  const runBatch: RunBatch<string, number> = async (lines, ctx) => {
    batchSizes.push(lines.length);
    await new Promise((resolve) => setTimeout(resolve, 1 + ((ctx.batchId * 7) % 5)));
    return lines.map((line) => {
      const x = Number(line);
      return line.trim() === '' || !Number.isFinite(x) ? new Error(`not a number: ${JSON.stringify(line)}`) : x * x;
    });
  };
  return [runBatch, batchSizes];
}

/**
 * Reads `path` line by line and scores every line through `batchMapSettled`: one output per
 * line, in file order; bad lines are reported and skipped, the rest keep flowing.
 *
 * @example
 * ```ts
 * const { lines } = await scoreReadingsFile('readings.txt', { maxBatchSize: 16 });
 * lines.forEach((line) => console.log(line)); // "1: 4", "2: skipped (not a number: "x")", …
 * ```
 */
export async function scoreReadingsFile(path: string, options: PipelineOptions = {}): Promise<PipelineReport> {
  const [runBatch, batchSizes] = makeScoringModel();
  const lines$ = from(createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity }));
  const lines = await lastValueFrom(
    lines$.pipe(
      batchMapSettled(runBatch, {
        name: 'readings',
        maxBatchSize: options.maxBatchSize ?? 16,
        maxDelayMs: options.maxDelayMs ?? 2,
        maxConcurrentBatches: options.maxConcurrentBatches ?? 4,
      }),
      // Settlements come out in source order, so the index is the line number.
      map((s, i) =>
        s.status === 'fulfilled'
          ? `${i + 1}: ${s.value}`
          : `${i + 1}: skipped (${s.reason instanceof Error ? s.reason.message : String(s.reason)})`,
      ),
      toArray(),
    ),
  );
  return { lines, batchSizes };
}

/**
 * The same file through plain `batchMap`: the first bad line errors the whole stream, as any
 * RxJS operator does. Resolves with the scores when every line is valid, rejects otherwise.
 *
 * @example
 * ```ts
 * await sumOfScores('readings.txt'); // rejects with "not a number: …" if a line is bad
 * ```
 */
export async function sumOfScores(path: string): Promise<number> {
  const [runBatch] = makeScoringModel();
  const lines$ = from(createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity }));
  const scores = await lastValueFrom(
    lines$.pipe(batchMap(runBatch, { maxBatchSize: 16, maxDelayMs: 2, maxConcurrentBatches: 4 }), toArray()),
  );
  return scores.reduce((a, b) => a + b, 0);
}
