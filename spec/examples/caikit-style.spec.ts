import { createClassifier, runColumns, type ModelCall } from '../../examples/caikit-style/classifier';

// Runs the recipe's batcher for real (real timers, 5 ms window).
describe('examples/caikit-style', () => {
  it('fills omitted fields from defaults (falsy ones too), never mixes variants, and passes columns', async () => {
    const { batcher, calls } = createClassifier({ maxBatchSize: 8, maxDelayMs: 5 });
    const requests = [
      { text: 'Hello there' },
      { text: 'Is it broken?', variant: 'legal' as const },
      { text: 'I LOVE this', lowercase: true, topK: 1 },
      { text: 'Great?', variant: 'legal' as const, threshold: 0.5 },
      { text: 'hi, bad knee', variant: 'medical' as const, topK: undefined },
    ];
    const frozen = requests.map((r) => Object.freeze({ ...r }));
    const results = await Promise.all(frozen.map((r) => batcher.run(r)));
    await batcher.stop({ drain: true });

    // One call per variant, each with complete, aligned columns.
    expect(calls).toHaveLength(3);
    const byVariant = new Map(calls.map((c) => [c.variant[0], c]));
    expect(byVariant.get('base')).toEqual<ModelCall>({
      text: ['Hello there', 'I LOVE this'],
      variant: ['base', 'base'],
      threshold: [0, 0],
      lowercase: [false, true],
      topK: [3, 1],
    });
    expect(byVariant.get('legal')?.text).toEqual(['Is it broken?', 'Great?']);
    expect(byVariant.get('legal')?.threshold).toEqual([0, 0.5]);
    expect(byVariant.get('medical')?.topK).toEqual([3]); // explicit undefined is filled too
    for (const call of calls) expect(new Set(call.variant).size).toBe(1);

    // Each caller got its own answer.
    expect(results.map((r) => r.variant)).toEqual(['base', 'legal', 'base', 'legal', 'medical']);
    expect(results[2].labels).toEqual([{ label: 'praise', score: 0.9 }]); // lowercase + topK 1
    expect(results[3].labels).toEqual([{ label: 'question', score: 0.9 }]); // threshold 0.5
    expect(results[0].labels).toHaveLength(3);
    // The callers' objects were not mutated.
    expect(frozen[0]).toEqual({ text: 'Hello there' });
  });

  it('the model really refuses mixed variants and missing arguments (what partitionBy and defaults prevent)', () => {
    const calls: ModelCall[] = [];
    const mixed = { text: ['a', 'b'], variant: ['base', 'legal'], threshold: [0, 0], lowercase: [false, false], topK: [3, 3] } as ModelCall;
    expect(() => runColumns(mixed, calls)).toThrow('one batch must use one variant, got base, legal');
    const holes = { text: ['a', 'b'], variant: ['base', 'base'], threshold: [0, undefined], lowercase: [false, false], topK: [3, 3] } as unknown as ModelCall;
    expect(() => runColumns(holes, calls)).toThrow('argument threshold is missing for some rows');
  });
});
