import { Batcher, columnar, toColumns } from '../lib';

describe('columnar', () => {
  it('turns a batch of objects into one array per field, keys in order of first appearance', () => {
    expect(toColumns([{ text: 'a', lang: 'en' }, { text: 'b' }, { text: 'c', lang: 'fr', extra: 1 } as { text: string; lang?: string }])).toEqual({
      text: ['a', 'b', 'c'],
      lang: ['en', undefined, 'fr'],
      extra: [undefined, undefined, 1],
    });
    expect(toColumns([])).toEqual({});
  });

  it('adapts a caikit-style run_batch(**columns) to a Batcher, with defaults completing every column', async () => {
    const seen: unknown[] = [];
    const batcher = new Batcher<{ name: string; greeting?: string }, string>({
      maxBatchSize: 3,
      defaults: { greeting: 'hello' },
      runBatch: columnar(({ name, greeting }, ctx) => {
        seen.push({ name, greeting, size: ctx.size });
        return name.map((n, i) => `${greeting[i]} ${n}`);
      }),
    });
    const results = await Promise.all([batcher.run({ name: 'ann' }), batcher.run({ name: 'bo', greeting: 'hi' })]);
    expect(results).toEqual(['hello ann', 'hi bo']);
    expect(seen).toEqual([{ name: ['ann', 'bo'], greeting: ['hello', 'hi'], size: 2 }]);
  });
});
