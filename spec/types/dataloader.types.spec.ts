/* Type-level checks of rx-batcher/dataloader against the `dataloader` package's own typings, verified by `tsc --noEmit` (npm test). */
import type Original from 'dataloader';
import DataLoader = require('rx-batcher/dataloader');
import DefaultImport from 'rx-batcher/dataloader';
import { DataLoader as NamedImport } from 'rx-batcher/dataloader';
import type { BatcherStats, Settlement } from '../../lib';
import type { Observable } from 'rxjs';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

interface User {
  id: number;
}
const batchLoadFn = async (ids: readonly number[]): Promise<User[]> => ids.map((id) => ({ id }));

// Code written for dataloader compiles unchanged: its options, its batch function, its methods.
const options: Original.Options<number, User> = { maxBatchSize: 10, cacheKeyFn: (id) => id, batchScheduleFn: (cb) => setTimeout(cb, 1) };
const loader = new DataLoader<number, User>(batchLoadFn, options);
const fromOriginalFn: Original.BatchLoadFn<number, User> = batchLoadFn;
new DataLoader(fromOriginalFn);
type _load = Expect<Equal<ReturnType<typeof loader.load>, Promise<User>>>;
type _loadMany = Expect<Equal<ReturnType<typeof loader.loadMany>, Promise<Array<User | Error>>>>;
type _chain = Expect<Equal<ReturnType<typeof loader.clear>, DataLoader<number, User>>>;
type _name = Expect<Equal<typeof loader.name, string | null>>;
void (() => [1, 2].map(loader.load, loader)); // the map index in the place of load's options

// A loader goes wherever code expects dataloader's type (a GraphQL context, say).
const asOriginal: Original<number, User> = loader;

// The three ways to import name one class and its types.
const defaultImported: DefaultImport<number, User> = new DefaultImport<number, User>(batchLoadFn);
const named: NamedImport<number, User> = new NamedImport<number, User>(batchLoadFn);
type _same = Expect<Equal<typeof NamedImport, typeof DataLoader>>;
const typesToo: DataLoader.CacheMap<number, Promise<User>> = new Map();

// What switching adds.
void (() => loader.load(1, { signal: AbortSignal.timeout(100), timeoutMs: 50 }));
void (() => loader.loadMany([1, 2], { timeoutMs: 50 }));
void (() => new DataLoader<number, User>(batchLoadFn, { maxConcurrentBatches: 4, maxQueueSize: 1000 }));
type _stats = Expect<Equal<ReturnType<typeof loader.stats>, BatcherStats>>;
type _results = Expect<Equal<typeof loader.results$, Observable<Settlement<number, User>>>>;

// @ts-expect-error: per-load options are an object, checked
void (() => loader.load(1, { timeoutMs: '5' }));
// @ts-expect-error: keys of the loader's key type
void (() => loader.load('1'));

void [asOriginal, defaultImported, named, typesToo];

describe('rx-batcher/dataloader (types)', () => {
  it('are checked by tsc; this loader still loads', async () => {
    await expect(loader.load(3)).resolves.toEqual({ id: 3 });
  });
});
