import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Batcher, batchMap, type BatchContext } from '../lib';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';
import { ManualScheduler } from './helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from './helpers/recording';

/** Texts whose weight is their length, like token counts. */
const byLength = (s: string): number => s.length;

/** A batcher whose batches are held until the test answers them, recording each batch. */
function heldBatcher(options: { maxBatchSize: number; maxBatchWeight?: number; maxDelayMs?: number; maxConcurrentBatches?: number }) {
  const scheduler = new ManualScheduler();
  const batches: { inputs: string[]; weight: number; reason: string; done: Deferred<number[]> }[] = [];
  const batcher = new Batcher<string, number>({
    name: 'tokens',
    weigh: byLength,
    maxDelayMs: 10,
    scheduler,
    ...options,
    runBatch: (inputs, ctx: BatchContext) => {
      const done = deferred<number[]>();
      batches.push({ inputs: [...inputs], weight: ctx.weight, reason: ctx.reason, done });
      return done.promise;
    },
  });
  const answer = (i: number): void => batches[i].done.resolve(batches[i].inputs.map(byLength));
  return { scheduler, batches, batcher, answer };
}

describe('cost budget: weigh and maxBatchWeight', () => {
  it('never exceeds the budget, keeps arrival order, and ctx.weight reports each batch total', async () => {
    const { batches, batcher, answer, scheduler } = heldBatcher({ maxBatchSize: 10, maxBatchWeight: 10 });
    const texts = ['aaaa', 'bbb', 'cc', 'ddddd', 'e', 'ffffffffff', 'g'];
    const calls = texts.map((t) => outcome(batcher.run(t)));
    for (let i = 0; i < 4; i++) {
      await settleMicrotasks();
      scheduler.advance(10);
      expect(batches.length).toBeGreaterThan(i);
      answer(i);
    }
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([['aaaa', 'bbb', 'cc'], ['ddddd', 'e'], ['ffffffffff'], ['g']]);
    expect(batches.map((b) => b.weight)).toEqual([9, 6, 10, 1]);
    for (const b of batches) expect(b.weight).toBeLessThanOrEqual(10);
    expect(calls.map((c) => c.value)).toEqual(texts.map(byLength));
  });

  it('a queue at its budget is due at once (reason full); late sealing fills each batch as far as the budget allows', async () => {
    const { batches, batcher, answer, scheduler } = heldBatcher({ maxBatchSize: 100, maxBatchWeight: 10 });
    const first = [batcher.run('xxxxxx'), batcher.run('yyyy')]; // 6 + 4 = 10: full, no window wait
    await settleMicrotasks();
    expect(batches.map((b) => [b.inputs, b.reason])).toEqual([[['xxxxxx', 'yyyy'], 'full']]);
    // While the only slot is busy, twelve 1-weight inputs queue; the next batch takes ten.
    const more = Array.from({ length: 12 }, (_, i) => batcher.run(String.fromCharCode(97 + i)));
    scheduler.advance(50);
    expect(batches).toHaveLength(1);
    answer(0);
    await Promise.all(first);
    expect(batches[1].inputs).toHaveLength(10);
    expect(batches[1].weight).toBe(10);
    answer(1);
    await settleMicrotasks();
    expect(batches[2].inputs).toEqual(['k', 'l']); // their window had expired: sent as soon as the slot freed
    answer(2);
    await expect(Promise.all(more)).resolves.toEqual(Array(12).fill(1));
  });

  it('maxBatchSize still applies under a roomy budget', async () => {
    const { batches, batcher, answer, scheduler } = heldBatcher({ maxBatchSize: 2, maxBatchWeight: 1000 });
    const calls = ['a', 'b', 'c'].map((t) => batcher.run(t));
    await settleMicrotasks();
    expect(batches[0].inputs).toEqual(['a', 'b']);
    answer(0);
    await settleMicrotasks();
    scheduler.advance(10); // 'c' waits out its window
    expect(batches[1].inputs).toEqual(['c']);
    answer(1);
    await expect(Promise.all(calls)).resolves.toEqual([1, 1, 1]);
  });

  it('an input heavier than the whole budget fails alone at run(), naming maxBatchWeight, its weight and the limit', async () => {
    const { batches, batcher, answer, scheduler } = heldBatcher({ maxBatchSize: 8, maxBatchWeight: 5 });
    const ok = batcher.run('abc');
    const heavy = batcher.run('abcdefgh');
    await expect(heavy).rejects.toThrow(RangeError);
    await expect(heavy).rejects.toThrow(
      '[rx-batcher] "tokens": run(input): this input weighs 8, more than the whole `maxBatchWeight` of 5, so no batch can take it. Split the input, or raise maxBatchWeight.',
    );
    scheduler.advance(10);
    answer(0);
    await expect(ok).resolves.toBe(3);
    expect(batcher.stats()).toMatchObject({ rejected: 1, succeeded: 1, submitted: 2 });
  });

  it.each([
    ['NaN', () => NaN, 'must return a finite number ≥ 0, returned NaN (number)'],
    ['a negative number', () => -1, 'must return a finite number ≥ 0, returned -1 (number)'],
    ['Infinity', () => Infinity, 'must return a finite number ≥ 0, returned Infinity (number)'],
    ['a string', () => '3' as unknown as number, 'must return a finite number ≥ 0, returned "3" (string)'],
    ['a throw', () => { throw new Error('tokenizer not loaded'); }, 'threw: tokenizer not loaded'],
  ])('weigh returning %s fails that call alone, with a clear error; its neighbours run', async (_what, bad, message) => {
    const seen: string[][] = [];
    const batcher = new Batcher<string, number>({
      name: 'w',
      maxBatchSize: 4,
      maxBatchWeight: 100,
      weigh: (s) => (s === 'bad' ? bad() : s.length),
      runBatch: (xs) => (seen.push([...xs]), xs.map((x) => x.length)),
    });
    const [a, b, c] = [batcher.run('aa'), batcher.run('bad'), batcher.run('c')];
    await expect(b).rejects.toThrow(`[rx-batcher] "w": run(input): \`weigh(input)\` ${message}`);
    await expect(Promise.all([a, c])).resolves.toEqual([2, 1]);
    expect(seen).toEqual([['aa', 'c']]);
  });

  it('without maxBatchWeight, weigh only reports: ctx.weight is the sum; without weigh, ctx.weight is the size', async () => {
    const weights: number[] = [];
    const weighed = new Batcher<string, number>({ maxBatchSize: 4, weigh: byLength, runBatch: (xs, ctx) => (weights.push(ctx.weight), xs.map(byLength)) });
    const plain = new Batcher<string, number>({ maxBatchSize: 4, runBatch: (xs, ctx) => (weights.push(ctx.weight), xs.map(byLength)) });
    await Promise.all(['aaaa', 'bbbbbbbbbb', 'c'].map((t) => weighed.run(t)));
    await Promise.all(['aaaa', 'bbbbbbbbbb', 'c'].map((t) => plain.run(t)));
    expect(weights).toEqual([15, 3]);
  });

  it('refuses a budget without weigh, and bad values, with messages that name the option', () => {
    const runBatch = (xs: readonly number[]): number[] => [...xs];
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, maxBatchWeight: 10 })).toThrow(
      '[rx-batcher] "batcher": `maxBatchWeight` needs `weigh`: a function (input) => number that says what one input costs (e.g. its token count).',
    );
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, weigh: () => 1, maxBatchWeight: 0 })).toThrow(RangeError);
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, weigh: () => 1, maxBatchWeight: NaN })).toThrow(
      '[rx-batcher] "batcher": `maxBatchWeight` must be a number > 0 (or Infinity for no budget), got NaN (number).',
    );
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, weigh: 3 as never })).toThrow(
      '[rx-batcher] "batcher": `weigh` must be a function (input) => number (what one input costs), got 3 (number).',
    );
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, batch_size_fn: () => 1 } as never)).toThrow('did you mean `weigh`?');
    expect(() => new Batcher({ runBatch, maxBatchSize: 2, maxTokens: 100 } as never)).toThrow('did you mean `maxBatchWeight`?');
  });

  it('batchMap honours the budget too, in source order', async () => {
    const sizes: number[] = [];
    const out = await lastValueFrom(
      from(['aaaa', 'bb', 'cccc', 'd', 'eeeee']).pipe(
        batchMap((xs) => (sizes.push(xs.reduce((n, x) => n + x.length, 0)), xs.map((x) => x.toUpperCase())), { maxBatchSize: 10, weigh: byLength, maxBatchWeight: 6 }),
        toArray(),
      ),
    );
    expect(out).toEqual(['AAAA', 'BB', 'CCCC', 'D', 'EEEEE']);
    expect(sizes).toEqual([6, 5, 5]);
  });

  it('a worker weighs what it pulls: batches across the broker keep the budget', async () => {
    const t = memoryTransport();
    const weights: number[] = [];
    const worker = await serveBatches<string, number>(t, 'tok', (xs, ctx) => (weights.push(ctx.weight), xs.map(byLength)), {
      maxBatchSize: 16, weigh: byLength, maxBatchWeight: 8, maxDelayMs: 1,
    });
    const p = remoteBatcher<string, number>(t, 'tok');
    const texts = ['aaaa', 'bbbb', 'cc', 'dddddd', 'eeeeeeee', 'f'];
    await expect(Promise.all(texts.map((x) => p.run(x)))).resolves.toEqual(texts.map(byLength));
    expect(weights.every((w) => w <= 8)).toBe(true);
    expect(weights.reduce((a, b) => a + b, 0)).toBe(25);
    await p.stop();
    await worker.stop();
  });

  it('property: random weights, budgets and aborts; no batch over budget, order kept, each call settles once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ w: fc.integer({ min: 0, max: 12 }), abort: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        async (items, budget, maxBatchSize) => {
          const scheduler = new ManualScheduler();
          const batches: number[][] = [];
          const batcher = new Batcher<number, number>({
            maxBatchSize, maxBatchWeight: budget, maxDelayMs: 3, scheduler,
            weigh: (i) => items[i].w,
            runBatch: (xs) => (batches.push([...xs]), xs.map((x) => x * 10)),
          });
          const controllers = items.map(() => new AbortController());
          const calls = items.map((_, i) => outcome(batcher.run(i, { signal: controllers[i].signal })));
          items.forEach((item, i) => item.abort && controllers[i].abort(new Error('gone')));
          for (let step = 0; step < 100 && calls.some((c) => !c.settled); step++) {
            scheduler.advance(3);
            await settleMicrotasks();
          }
          for (const [i, c] of calls.entries()) {
            expect(c.settled).toBe(true);
            if (items[i].w > budget) expect(c.error).toBeInstanceOf(RangeError);
            else if (items[i].abort && c.error !== undefined) {
              // Aborted before its batch ran (runBatch is synchronous: a dispatched call has its value).
              expect(c.error).toEqual(new Error('gone'));
              expect(batches.flat()).not.toContain(i);
            } else expect(c.value).toBe(i * 10);
          }
          for (const b of batches) {
            expect(b.length).toBeLessThanOrEqual(maxBatchSize);
            expect(b.reduce((n, i) => n + items[i].w, 0)).toBeLessThanOrEqual(budget);
          }
          const ran = batches.flat();
          expect(ran).toEqual([...ran].sort((a, b) => a - b));
          const s = batcher.stats();
          expect(s.submitted).toBe(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected);
        },
      ),
      { numRuns: 200 },
    );
  });
});
