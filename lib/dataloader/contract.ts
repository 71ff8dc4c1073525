import type { BatchResults, RunBatch } from '../types.js';

/**
 * A DataLoader batch function: given the keys of one batch, a Promise of one value (or `Error`)
 * per key, in the keys' order.
 *
 * @example
 * ```ts
 * const batchLoadFn: BatchLoadFn<number, User> = (ids) => db.users.findMany(ids);
 * ```
 */
export type BatchLoadFn<K, V> = (keys: ReadonlyArray<K>) => PromiseLike<ArrayLike<V | Error>>;

const CONTRACT = 'DataLoader must be constructed with a function which accepts Array<key> and returns Promise<Array<value>>, but the function';

/**
 * The engine's `runBatch` for a loader: calls `batchLoadFn` with the keys (and the loader as
 * `this`) and holds it to DataLoader's stricter contract, with DataLoader's messages: it must
 * not throw, must return a Promise (not a plain array), and that Promise must resolve to an
 * array-like with one entry per key. A breach fails the batch (`TypeError`), as in DataLoader;
 * the engine then checks the length again, as it does for every face, and settles each key.
 *
 * What it returns is a thenable that calls back in the same microtask as `batchLoadFn`'s
 * Promise, so values reach callers as early as DataLoader delivers them.
 *
 * @example
 * ```ts
 * const runBatch = dataLoaderRunBatch(batchLoadFn, loader);
 * ```
 */
export function dataLoaderRunBatch<K, V>(batchLoadFn: BatchLoadFn<K, V>, loader: object): RunBatch<K, V> {
  return (keys) => {
    let returned: PromiseLike<ArrayLike<V | Error>>;
    try {
      returned = batchLoadFn.call(loader, keys);
    } catch (error) {
      throw new TypeError(`${CONTRACT} errored synchronously: ${String(error)}.`);
    }
    if (!returned || typeof returned.then !== 'function') {
      throw new TypeError(`${CONTRACT} did not return a Promise: ${String(returned)}.`);
    }
    const batchPromise = returned;
    const checked = {
      // The engine passes both callbacks; neither throws.
      then(onFulfilled: (values: BatchResults<V>) => unknown, onRejected: (reason: unknown) => unknown) {
        return batchPromise.then((values) => {
          const problem = contractProblem(keys, values);
          return problem === undefined ? onFulfilled(values as BatchResults<V>) : onRejected(problem);
        }, onRejected);
      },
    };
    return checked as PromiseLike<BatchResults<V>>;
  };
}

/** What is wrong with a resolved value, in DataLoader's words; `undefined` when it is fine. */
function contractProblem(keys: readonly unknown[], values: unknown): TypeError | undefined {
  if (!isArrayLike(values)) {
    return new TypeError(`${CONTRACT} did not return a Promise of an Array: ${String(values)}.`);
  }
  if (values.length !== keys.length) {
    return new TypeError(
      `${CONTRACT} did not return a Promise of an Array of the same length as the Array of keys.` +
        `\n\nKeys:\n${String(keys)}\n\nValues:\n${String(values)}`,
    );
  }
  return undefined;
}

/**
 * DataLoader's array-like test (for what `batchLoadFn` resolves to and for `loadMany`'s keys):
 * an object with a numeric `length` whose last index is an own property.
 *
 * @example
 * ```ts
 * isArrayLike({ length: 1, 0: 'a' }); // true
 * ```
 */
export function isArrayLike(x: unknown): x is ArrayLike<unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const length = (x as { length?: unknown }).length;
  return typeof length === 'number' && (length === 0 || (length > 0 && Object.prototype.hasOwnProperty.call(x, length - 1)));
}
