import { Batcher, type BatchContext, type RunBatch } from 'rx-batcher';
import { createTextBatcher } from './textBatcher';
import type { TokenIds } from './textModel';

/**
 * A way to batch texts: a label and a factory for the batcher in front of a model.
 *
 * @example
 * ```ts
 * const countOnly: Policy = { label: 'count only', create: (runBatch) => new Batcher({ runBatch, maxBatchSize: 32 }) };
 * ```
 */
export interface Policy {
  readonly label: string;
  readonly create: (runBatch: RunBatch<TokenIds, Float32Array>) => Batcher<TokenIds, Float32Array>;
}

/**
 * The four policies the recipe compares, all meant to keep a padded batch (size × longest)
 * near `maxBatchTokens`, for texts of up to `maxTextTokens` tokens:
 *
 * 1. a count that makes the worst case fit: `maxBatchSize` = maxBatchTokens / maxTextTokens;
 * 2. a common count, 32, whose worst case is well over the budget;
 * 3. a budget on total tokens (`weigh` = token count), no buckets;
 * 4. the recipe: length buckets and a budget on padded tokens ({@link createTextBatcher}).
 *
 * @example
 * ```ts
 * for (const policy of comparedPolicies({ maxBatchTokens: 4096, maxTextTokens: 512 })) console.log(policy.label);
 * ```
 */
export function comparedPolicies(options: { readonly maxBatchTokens: number; readonly maxTextTokens: number; readonly maxDelayMs?: number }): Policy[] {
  const { maxBatchTokens, maxTextTokens, maxDelayMs = 5 } = options;
  const safeCount = Math.max(1, Math.floor(maxBatchTokens / maxTextTokens));
  return [
    { label: `count only, maxBatchSize ${safeCount}`, create: (runBatch) => new Batcher({ runBatch, maxBatchSize: safeCount, maxDelayMs }) },
    { label: 'count only, maxBatchSize 32', create: (runBatch) => new Batcher({ runBatch, maxBatchSize: 32, maxDelayMs }) },
    {
      label: `total tokens ≤ ${maxBatchTokens}`,
      create: (runBatch) => new Batcher({ runBatch, maxBatchSize: 256, maxDelayMs, weigh: (ids) => ids.length, maxBatchWeight: maxBatchTokens }),
    },
    { label: `buckets + padded ≤ ${maxBatchTokens}`, create: (runBatch) => createTextBatcher({ runBatch }, { maxBatchTokens, maxDelayMs }) },
  ];
}

/**
 * One model call as the batcher formed it.
 *
 * @example
 * ```ts
 * const padded = record.size * record.longest; // positions the model computed
 * ```
 */
export interface BatchRecord {
  /** Texts in it. */
  readonly size: number;
  /** `ctx.weight`: what the policy's `weigh` summed to (the size, without `weigh`). */
  readonly weight: number;
  /** `ctx.partition`: the length bucket, or `undefined` without buckets. */
  readonly partition: string | undefined;
  /** Its longest text, in tokens: the length the model pads the batch to. */
  readonly longest: number;
  /** Real tokens in it. */
  readonly tokens: number;
}

/**
 * What {@link runBacklog} measured.
 *
 * @example
 * ```ts
 * const { textsPerSecond, paddingShare, largestPaddedBatch } = await runBacklog(model, texts, policy);
 * ```
 */
export interface BacklogResult {
  readonly label: string;
  /** One output per text, in the order of the texts. */
  readonly outputs: Float32Array[];
  /** Every model call, in the order they were made. */
  readonly batches: BatchRecord[];
  readonly seconds: number;
  readonly textsPerSecond: number;
  readonly meanBatchSize: number;
  /** Positions computed (Σ size × longest) that were padding, as a share of all computed. */
  readonly paddingShare: number;
  /** The largest size × longest of any call. */
  readonly largestPaddedBatch: number;
}

/**
 * Sends every text to a batcher made by `policy` at once, as a burst (or a queue under
 * overload) does, waits for every answer, and reports throughput and what each model call held.
 *
 * @example
 * ```ts
 * const result = await runBacklog(model, texts.map(tokenize), policy);
 * console.log(result.textsPerSecond, result.paddingShare);
 * ```
 */
export async function runBacklog(
  model: { readonly runBatch: (texts: readonly TokenIds[]) => Promise<Float32Array[]> },
  texts: readonly TokenIds[],
  policy: Policy,
): Promise<BacklogResult> {
  const batches: BatchRecord[] = [];
  const batcher = policy.create((batch: readonly TokenIds[], ctx: BatchContext) => {
    const lengths = batch.map((ids) => ids.length);
    batches.push({ size: ctx.size, weight: ctx.weight, partition: ctx.partition, longest: Math.max(...lengths), tokens: lengths.reduce((a, b) => a + b, 0) });
    return model.runBatch(batch);
  });
  const start = performance.now();
  const outputs = await Promise.all(texts.map((ids) => batcher.run(ids)));
  const seconds = (performance.now() - start) / 1000;
  await batcher.stop({ drain: true });
  const padded = batches.reduce((sum, b) => sum + b.size * b.longest, 0);
  const real = batches.reduce((sum, b) => sum + b.tokens, 0);
  return {
    label: policy.label,
    outputs,
    batches,
    seconds,
    textsPerSecond: texts.length / seconds,
    meanBatchSize: texts.length / batches.length,
    paddingShare: padded === 0 ? 0 : (padded - real) / padded,
    largestPaddedBatch: Math.max(...batches.map((b) => b.size * b.longest)),
  };
}

/**
 * Formats results as an aligned text table.
 *
 * @example
 * ```ts
 * console.log(formatComparison(results));
 * ```
 */
export function formatComparison(results: readonly BacklogResult[]): string {
  const rows = [
    ['policy', 'texts/s', 'calls', 'mean batch', 'padding', 'largest size × longest'],
    ...results.map((r) => [
      r.label,
      r.textsPerSecond.toFixed(0),
      String(r.batches.length),
      r.meanBatchSize.toFixed(1),
      `${(r.paddingShare * 100).toFixed(0)}%`,
      String(r.largestPaddedBatch),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}
