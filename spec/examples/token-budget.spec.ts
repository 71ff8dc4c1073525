/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { decode } from 'gpt-tokenizer/encoding/cl100k_base';
import { comparedPolicies, runBacklog, type BacklogResult, type BatchRecord } from '../../examples/token-budget/compare';
import { createTextBatcher, MAX_TEXT_TOKENS, paddedLength, tokenize } from '../../examples/token-budget/textBatcher';
import { loadTextModel, TEXT_CLASSES, TEXT_VOCAB, type TextModel, type TokenIds } from '../../examples/token-budget/textModel';
import { reviewTexts } from '../../examples/token-budget/workload';

const BUDGET = 4096;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/**
 * What the engine's rules say the batches of a backlog are, worked out here independently:
 * per key, in arrival order, each batch takes the oldest texts while it has fewer than
 * `maxBatchSize` and the next one still fits in the budget (never skipping ahead).
 */
function expectedBatches(
  texts: readonly TokenIds[],
  rules: { maxBatchSize: number; budget?: number; weigh?: (ids: TokenIds) => number; key?: (ids: TokenIds) => string },
): Map<string | undefined, Omit<BatchRecord, 'partition'>[]> {
  const { maxBatchSize, budget = Infinity, weigh = () => 1, key = () => undefined } = rules;
  const queues = new Map<string | undefined, TokenIds[]>();
  for (const ids of texts) queues.set(key(ids), [...(queues.get(key(ids)) ?? []), ids]);
  const out = new Map<string | undefined, Omit<BatchRecord, 'partition'>[]>();
  for (const [k, queue] of queues) {
    const batches: Omit<BatchRecord, 'partition'>[] = [];
    let current: TokenIds[] = [];
    let weight = 0;
    const close = () => {
      const lengths = current.map((ids) => ids.length);
      batches.push({ size: current.length, weight, longest: Math.max(...lengths), tokens: lengths.reduce((a, b) => a + b, 0) });
      current = [];
      weight = 0;
    };
    for (const ids of queue) {
      if (current.length === maxBatchSize || (current.length > 0 && weight + weigh(ids) > budget)) close();
      current.push(ids);
      weight += weigh(ids);
    }
    if (current.length > 0) close();
    out.set(k, batches);
  }
  return out;
}

/** The model calls a run made, grouped by partition, each group in the order it ran. */
function byPartition(batches: readonly BatchRecord[]): Map<string | undefined, Omit<BatchRecord, 'partition'>[]> {
  const out = new Map<string | undefined, Omit<BatchRecord, 'partition'>[]>();
  for (const { partition, ...rest } of batches) out.set(partition, [...(out.get(partition) ?? []), rest]);
  return out;
}

const sorted = <V>(m: Map<string | undefined, V>) => [...m].sort(([a], [b]) => String(a).localeCompare(String(b)));

// The real tokenizer (cl100k_base from gpt-tokenizer) and the real ONNX model, on a burst of
// 400 mixed-length texts. Every text is queued in one synchronous loop before any batch can be
// sealed, so each policy's batches follow from its rules alone (oldest first, as many as the
// count and the budget allow), however fast the machine is: the test checks them exactly and
// asserts no time.
describe('examples/token-budget', () => {
  const texts = reviewTexts(400, 7).map(tokenize);
  let model: TextModel;
  let alone: Float32Array[];
  beforeAll(async () => {
    model = await loadTextModel();
    alone = [];
    for (const ids of texts) alone.push(await model.runOne(ids));
  });
  afterAll(() => model.close());

  it('tokenizes with the real BPE, cuts at the model context, and buckets lengths by powers of two', () => {
    expect(tokenize('This film was a delight.')).toEqual([2028, 4632, 574, 264, 18454, 13]);
    expect(decode([...tokenize('Saw it with friends.')])).toBe('Saw it with friends.');
    expect(tokenize('word '.repeat(2000))).toHaveLength(MAX_TEXT_TOKENS);
    expect([0, 1, 8, 9, 16, 17, 100, 128, 129, 512].map(paddedLength)).toEqual([8, 8, 8, 16, 16, 32, 128, 128, 256, 512]);
    // The burst mixes every bucket, from one-liners to pages.
    const buckets = new Set(texts.map((ids) => paddedLength(ids.length)));
    expect([...buckets].sort((a, b) => a - b)).toEqual([8, 16, 32, 64, 128, 256, 512]);
  });

  it('the model gives a text the same logits in a padded batch as alone, and checks its ids', async () => {
    const mixed = [texts[0], tokenize('word '.repeat(300)), [], texts[1]];
    const batched = await model.runBatch(mixed);
    expect(batched.map((l) => l.length)).toEqual([TEXT_CLASSES, TEXT_CLASSES, TEXT_CLASSES, TEXT_CLASSES]);
    for (let i = 0; i < mixed.length; i++) expect(maxAbsDiff(batched[i], await model.runOne(mixed[i]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(batched[0], batched[3])).toBeGreaterThan(1e-4); // different texts, different logits
    expect(batched.flatMap((l) => [...l]).every(Number.isFinite)).toBe(true); // the empty text too
    await expect(model.runOne([5, TEXT_VOCAB])).rejects.toThrow(`text 0, token 1: id ${TEXT_VOCAB} is outside the vocabulary (0…${TEXT_VOCAB - 1})`);
  });

  describe.each(comparedPolicies({ maxBatchTokens: BUDGET, maxTextTokens: MAX_TEXT_TOKENS }).map((p, i) => [p.label, i] as const))('policy "%s"', (_label, index) => {
    let result: BacklogResult;
    beforeAll(async () => {
      result = await runBacklog(model, texts, comparedPolicies({ maxBatchTokens: BUDGET, maxTextTokens: MAX_TEXT_TOKENS })[index]);
    });

    it('answers every text, as the model does for that text alone', () => {
      expect(result.outputs).toHaveLength(texts.length);
      let worst = 0;
      for (let i = 0; i < texts.length; i++) worst = Math.max(worst, maxAbsDiff(result.outputs[i], alone[i]));
      expect(worst).toBeLessThan(1e-5);
      expect(result.batches.reduce((n, b) => n + b.size, 0)).toBe(texts.length);
    });

    it('forms exactly the batches its rules imply', () => {
      const rules = [
        { maxBatchSize: BUDGET / MAX_TEXT_TOKENS },
        { maxBatchSize: 32 },
        { maxBatchSize: 256, budget: BUDGET, weigh: (ids: TokenIds) => ids.length },
        { maxBatchSize: 256, budget: BUDGET, weigh: (ids: TokenIds) => paddedLength(ids.length), key: (ids: TokenIds) => String(paddedLength(ids.length)) },
      ][index];
      expect(sorted(byPartition(result.batches))).toEqual(sorted(expectedBatches(texts, rules)));
    });
  });

  it('the recipe: no model call computes more than the budget, padding included, and each bucket fills to what the budget allows', async () => {
    const results: BacklogResult[] = [];
    for (const policy of comparedPolicies({ maxBatchTokens: BUDGET, maxTextTokens: MAX_TEXT_TOKENS })) results.push(await runBacklog(model, texts, policy));
    const [, count32, totalTokens, recipe] = results;
    for (const b of recipe.batches) {
      expect(b.weight).toBeLessThanOrEqual(BUDGET);
      expect(b.size * b.longest).toBeLessThanOrEqual(b.weight); // the weight bounds the padded batch
      expect(paddedLength(b.longest)).toBe(Number(b.partition));
    }
    // Every batch of a bucket but its last holds min(256, budget / bucket length) texts.
    for (const [bucket, batches] of byPartition(recipe.batches)) {
      const full = Math.min(256, BUDGET / Number(bucket));
      expect(batches.slice(0, -1).map((b) => b.size)).toEqual(batches.slice(0, -1).map(() => full));
      expect(batches.at(-1)!.size).toBeLessThanOrEqual(full);
    }
    expect(recipe.largestPaddedBatch).toBeLessThanOrEqual(BUDGET);
    // A budget on total tokens does not bound the padded batch: one long text pads all the short ones.
    expect(Math.max(...totalTokens.batches.map((b) => b.weight))).toBeLessThanOrEqual(BUDGET);
    expect(totalTokens.largestPaddedBatch).toBeGreaterThan(2 * BUDGET);
    // Buckets waste less than a quarter of the positions computed; a count of 32 wastes most.
    expect(recipe.paddingShare).toBeLessThan(0.25);
    expect(count32.paddingShare).toBeGreaterThan(0.5);
  });

  it('a text heavier than the whole budget fails alone at run(), naming maxBatchWeight', async () => {
    const batcher = createTextBatcher(model, { maxBatchTokens: 256 });
    const long = batcher.run(tokenize('word '.repeat(300))); // 300 tokens pad to 512
    const short = batcher.run(tokenize('Loved it.'));
    await expect(long).rejects.toThrow(
      '[rx-batcher] "text-classifier": run(input): this input weighs 512, more than the whole `maxBatchWeight` of 256, so no batch can take it. Split the input, or raise maxBatchWeight.',
    );
    expect(maxAbsDiff(await short, await model.runOne(tokenize('Loved it.')))).toBeLessThan(1e-5);
    await batcher.stop({ drain: true });
  });
});
