/* Type-level checks, verified by `tsc --noEmit` (npm test); the one runtime test keeps jest honest. */
import { of, type Observable, type OperatorFunction } from 'rxjs';
import { Batcher, batchMap, batchMapSettled, columnar, type BatchContext, type RunBatch, type Settlement } from '../../lib';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

const batcher = new Batcher<{ id: number; lang?: string }, string>({
  maxBatchSize: 4,
  runBatch: (inputs, ctx) => {
    type _ctx = Expect<Equal<typeof ctx, BatchContext>>;
    return inputs.map((i) => `${i.id}`);
  },
  defaults: { lang: 'en' },
});

type _run = Expect<Equal<ReturnType<typeof batcher.run>, Promise<string>>>;
type _run$ = Expect<Equal<ReturnType<typeof batcher.run$>, Observable<string>>>;
type _results = Expect<Equal<typeof batcher.results$, Observable<Settlement<{ id: number; lang?: string }, string>>>>;
type _op = Expect<Equal<ReturnType<typeof batchMap<number, string>>, OperatorFunction<number, string>>>;
type _settled = Expect<Equal<ReturnType<typeof batchMapSettled<number, string>>, OperatorFunction<number, Settlement<number, string>>>>;

// runBatch may return an array, a Promise, an Observable, or a typed array
const fromPromise: RunBatch<number, number> = async (xs) => xs.map((x) => x + 1);
const fromObservable: RunBatch<number, number> = (xs) => of(xs.map((x) => x + 1));
const fromTypedArray: RunBatch<number, number> = (xs) => Float32Array.from(xs);
const withErrors: RunBatch<number, number> = (xs) => xs.map((x) => (x < 0 ? new Error('negative') : x));
void [fromPromise, fromObservable, fromTypedArray, withErrors];

// @ts-expect-error: maxBatchSize is required
void (() => new Batcher<number, number>({ runBatch: (xs) => xs }));
// @ts-expect-error: defaults must match the input's fields
void (() => new Batcher<{ id: number }, number>({ maxBatchSize: 1, runBatch: (xs) => xs.map((x) => x.id), defaults: { idd: 1 } }));
// @ts-expect-error: results must be of the output type
void (() => new Batcher<number, string>({ maxBatchSize: 1, runBatch: (xs) => xs.map((x) => x * 2) }));
// dedupeBy sees the input type and returns a string or number key
void (() => new Batcher<{ id: number }, number>({ maxBatchSize: 1, runBatch: (xs) => xs.map((x) => x.id), dedupeBy: (x) => x.id }));
// @ts-expect-error: a dedupe key is a string or a number, not an object
void (() => new Batcher<{ id: number }, number>({ maxBatchSize: 1, runBatch: (xs) => xs.map((x) => x.id), dedupeBy: (x) => x }));
// @ts-expect-error: columnar needs object inputs
void (() => columnar<number, number>(() => []));

describe('public types', () => {
  it('are checked by tsc; this batcher still runs', async () => {
    await expect(batcher.run({ id: 7 })).resolves.toBe('7');
  });
});
