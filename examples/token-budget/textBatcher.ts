import { encode } from 'gpt-tokenizer/encoding/cl100k_base';
import { Batcher, type RunBatch } from 'rx-batcher';
import type { TokenIds } from './textModel';

/** The longest text the model reads, in tokens; longer ones are cut, as a real classifier's context is. */
export const MAX_TEXT_TOKENS = 512;
/** The shortest padded length: texts of 1…8 tokens share one bucket. */
export const SMALLEST_BUCKET = 8;

/**
 * Tokenizes a text with the `cl100k_base` BPE (gpt-tokenizer: pure JavaScript, the vocabulary
 * ships in the package, nothing is downloaded) and cuts it to {@link MAX_TEXT_TOKENS}.
 * Tokenize once, where the request arrives: the batcher carries token ids, so `weigh` only
 * reads a length and the model gets ids it does not have to compute again.
 *
 * @example
 * ```ts
 * tokenize('This film was a delight.'); // [2028, 4632, 574, 264, 18454, 13]
 * ```
 */
export function tokenize(text: string): TokenIds {
  const ids = encode(text);
  return ids.length > MAX_TEXT_TOKENS ? ids.slice(0, MAX_TEXT_TOKENS) : ids;
}

/**
 * The length a text of `tokens` tokens is padded to at most: the next power of two, at least
 * {@link SMALLEST_BUCKET}. Texts with the same padded length form one bucket; in a batch of
 * one bucket, the longest text is never longer than this, so the batch's padded size (size ×
 * longest) is at most the sum of its texts' padded lengths.
 *
 * @example
 * ```ts
 * paddedLength(5);   // 8
 * paddedLength(9);   // 16
 * paddedLength(100); // 128
 * ```
 */
export function paddedLength(tokens: number): number {
  let length = SMALLEST_BUCKET;
  while (length < tokens) length *= 2;
  return length;
}

/**
 * Options of {@link createTextBatcher}.
 *
 * @example
 * ```ts
 * const options: TextBatcherOptions = { maxBatchTokens: 4096, maxDelayMs: 2 };
 * ```
 */
export interface TextBatcherOptions {
  /** The budget: the most padded positions (batch size × the length texts are padded to) one model call computes. */
  readonly maxBatchTokens: number;
  /** Still a cap on texts per call. @default 256 */
  readonly maxBatchSize?: number;
  /** How long the first text of a batch waits for companions of its bucket. @default 5 */
  readonly maxDelayMs?: number;
}

/**
 * The batcher in front of a text model that pads each batch to its longest text: a token
 * budget bounds the padded batch, size × longest, and length buckets keep the padding small.
 *
 * - `partitionBy` puts texts of one padded length (a power of two) in one queue, so short
 *   texts are never padded to a long one's length;
 * - `weigh` is a text's padded length, so a batch's weight, the sum, is size × that length,
 *   an upper bound on what the model computes (it pads to the batch's longest);
 * - `maxBatchWeight` is the budget: a batch of 8-token texts may hold many, a batch of
 *   512-token texts few, and no batch costs more than the budget.
 *
 * @example
 * ```ts
 * const model = await loadTextModel();
 * const batcher = createTextBatcher(model, { maxBatchTokens: 4096 });
 * const logits = await batcher.run(tokenize('Loved every minute of it.'));
 * ```
 */
export function createTextBatcher(
  model: { readonly runBatch: RunBatch<TokenIds, Float32Array> },
  options: TextBatcherOptions,
): Batcher<TokenIds, Float32Array> {
  return new Batcher<TokenIds, Float32Array>({
    name: 'text-classifier',
    runBatch: model.runBatch,
    partitionBy: (ids) => String(paddedLength(ids.length)),
    weigh: (ids) => paddedLength(ids.length),
    maxBatchWeight: options.maxBatchTokens,
    maxBatchSize: options.maxBatchSize ?? 256,
    maxDelayMs: options.maxDelayMs ?? 5,
  });
}
