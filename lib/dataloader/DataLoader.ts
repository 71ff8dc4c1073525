/**
 * `rx-batcher/dataloader`: a drop-in `DataLoader` (the API of the `dataloader` package, 2.2.3)
 * on rx-batcher's batching engine. `require('rx-batcher/dataloader')` is the class, as
 * `require('dataloader')` is; `import DataLoader from …` and `import { DataLoader } from …`
 * both work.
 *
 * @example
 * ```ts
 * import DataLoader from 'rx-batcher/dataloader'; // was: import DataLoader from 'dataloader';
 * const users = new DataLoader<number, User>((ids) => db.usersByIds(ids));
 * ```
 * @module rx-batcher/dataloader
 */
import { map, type Observable } from 'rxjs';
import { BatchEngine } from '../core/batchEngine.js';
import type { BatchConfig } from '../core/config.js';
import type { ShareRule } from '../core/dedupe.js';
import { BATCH_FAILED, CANCELLED, EngineRequest, QUEUED, Rejection, SUCCEEDED, type RequestExtras, type SettledState } from '../core/request.js';
import { toSettlement } from '../core/toSettlement.js';
import { takeSnapshot, type BatcherStats } from '../stats/statsSnapshot.js';
import type { Settlement } from '../types.js';
import { dataLoaderRunBatch, isArrayLike, type BatchLoadFn as BatchLoadFnType } from './contract.js';
import {
  checkLoaderOptions,
  engineConfig,
  engineName,
  loadExtras,
  rxBatcherOptions,
  type CacheMap as CacheMapType,
  type DataLoaderOptions,
  type LoadOptions as LoadOptionsType,
} from './options.js';
import { dataLoaderScheduler, type CallbackScheduler } from './scheduling.js';

/**
 * DataLoader 2.2.3's API on rx-batcher's engine: the same constructor, options, methods,
 * scheduling and messages, so switching is one import line. The loader owns what is
 * DataLoader's own (the promise cache, keys, its contract with `batchLoadFn`); batches are
 * formed, sealed, run and settled by the engine that runs `Batcher` and `batchMap`. With a
 * cache, loads of a key still loading share its one entry in the engine (the engine's shared
 * inputs, keyed by the cache entry), so a load that gives up is the engine's to handle.
 *
 * What switching adds: `load(key, { signal, timeoutMs })`, `maxConcurrentBatches` (with late
 * sealing), `maxQueueSize`, `stats()` and `results$`.
 *
 * @example
 * ```ts
 * import DataLoader from 'rx-batcher/dataloader';
 *
 * const users = new DataLoader<number, User>((ids) => db.usersByIds(ids), { maxConcurrentBatches: 4 });
 * const [ada, alan] = await Promise.all([users.load(1), users.load(2)]); // one batch: [1, 2]
 * ```
 */
class DataLoader<K, V, C = K> {
  /** The class itself, so `import { DataLoader } from 'rx-batcher/dataloader'` works as well as the default import. */
  static readonly DataLoader: typeof DataLoader = DataLoader;

  /** The `name` option (for APM tools); `null` when none was given. */
  name: string | null;

  /** Built on first use (many loaders made per request are never used), by the `#engine` getter. */
  #engineInstance: BatchEngine<K, V> | undefined = undefined;
  /** The engine's rules, checked at construction when rx-batcher's options were given, else built with the engine. */
  #config: BatchConfig<K, V> | (() => BatchConfig<K, V>);
  #results$: Observable<Settlement<K, V>> | undefined = undefined;
  /** The engine's name: the `name` option, or `'DataLoader'`; used in rx-batcher's messages. */
  readonly #engineName: string;
  /** DataLoader's `maxBatchSize`, as the engine counts it. */
  readonly #maxBatchSize: number;
  readonly #cacheKeyFn: (key: K) => C;
  readonly #cacheMap: CacheMapType<C, Promise<V>> | null;
  /** When batches close (DataLoader's tick, or `batchScheduleFn`); also closes batches of cache hits only. */
  readonly #windows: CallbackScheduler;
  /** The latest load still queued: a cache hit joins its batch and settles with it. */
  #lastQueued: LoadRequest<K, V> | undefined = undefined;
  /** Cache hits that came when no load with room was queued: the next load adopts them, else their own window releases them. */
  #waitingHits: (() => void)[] | undefined = undefined;
  /**
   * The keys still loading, by cache key (a plain `Map`: each entry leaves when its key settles
   * or is dropped, and a `WeakMap` costs the garbage collector far more): a load of one joins
   * it in the engine when it may give up.
   */
  readonly #loading = new Map<C, KeyEntry<K, V, C>>();
  /** What `batchScheduleFn` threw during this `load()`, to rethrow once the loader is consistent. */
  #scheduleError: { error: unknown } | undefined = undefined;
  #snapshot: BatcherStats | undefined = undefined;

  /**
   * @param batchLoadFn - given the keys of one batch (and the loader as `this`), a Promise of
   * one value or `Error` per key, in order.
   * @param options - DataLoader's options, plus rx-batcher's; bad ones throw DataLoader's
   * `TypeError`s (rx-batcher's messages for its own options).
   */
  constructor(batchLoadFn: DataLoader.BatchLoadFn<K, V>, options?: DataLoader.Options<K, V, C>) {
    const settings = checkLoaderOptions<K, V, C>(batchLoadFn, options);
    this.name = settings.name;
    this.#maxBatchSize = settings.maxBatchSize;
    this.#cacheKeyFn = settings.cacheKeyFn;
    this.#cacheMap = settings.cacheMap;
    this.#windows = dataLoaderScheduler(settings.batchScheduleFn, this, (error) => (this.#scheduleError ??= { error }));
    this.#engineName = engineName(settings);
    const engineOptions = rxBatcherOptions(options);
    const share = this.#cacheMap === null ? undefined : this.#shareRule();
    const build = (): BatchConfig<K, V> => engineConfig<K, V>(engineOptions, settings, dataLoaderRunBatch(batchLoadFn, this), this.#windows, share);
    // rx-batcher's own options are checked now, so bad ones throw here as DataLoader's do.
    this.#config = engineOptions === undefined ? build : build();
  }

  /**
   * rx-batcher: every load's settlement in the engine, once, as `Batcher.results$` has them: a
   * `Promise.allSettled` entry plus `id` and `input` (the key). Loads answered from the cache
   * (and primed keys) never reach the engine and do not appear. Hot: subscribe before loading to see everything.
   *
   * @example
   * ```ts
   * users.results$.subscribe((s) => s.status === 'rejected' && log.warn(`user ${s.input}`, s.reason));
   * ```
   */
  get results$(): Observable<Settlement<K, V>> {
    return (this.#results$ ??= this.#engine.settled$.pipe(map(toSettlement<K, V>)));
  }

  /**
   * Loads a key: a Promise of its value, from the cache or from the batch it joins.
   * Throws a `TypeError` for a `null` or `undefined` key (as DataLoader does).
   *
   * rx-batcher: with `{ signal, timeoutMs }` this call may give up first; the key then leaves
   * its queue and the cache unless another caller still waits for it.
   *
   * @example
   * ```ts
   * const user = await users.load(1, { signal: request.signal, timeoutMs: 500 });
   * ```
   */
  load(key: K): Promise<V>;
  // A second overload, so that `ids.map(loader.load, loader)` (the index in the place of the
  // options) still type-checks as it does with DataLoader's one-parameter `load`.
  load(key: K, options: DataLoader.LoadOptions): Promise<V>;
  load(key: K, options?: DataLoader.LoadOptions): Promise<V> {
    if (key === null || key === undefined) {
      throw new TypeError(`The loader.load() function must be called with a value, but got: ${String(key)}.`);
    }
    const extras = options === undefined ? undefined : loadExtras(this.#engineName, options);
    const cacheMap = this.#cacheMap;
    if (cacheMap === null) return this.#submit(new LoadRequest<K, V>(key, extras, undefined), undefined, true);

    const cacheKey = this.#cacheKeyFn.call(this, key);
    const cached = cacheMap.get(cacheKey);
    if (cached) {
      let loading = this.#loading.get(cacheKey);
      if (loading !== undefined && loading.promise !== cached) loading = undefined; // cleared, and cached anew since
      if (loading === undefined || (extras === undefined && loading.pinned)) {
        // Answered from the cache, or the key stays loading whatever happens: DataLoader's cache hit.
        if (extras?.signal?.aborted) return Promise.reject(extras.signal.reason);
        const hit = this.#hit(cached);
        this.#rethrowScheduleError();
        return hit;
      }
      // Every caller of the key so far may give up: this load joins the key in the engine, as a caller of its own.
      return this.#submit(new LoadRequest<K, V>(key, extras, loading as KeyEntry<K, V, unknown>), undefined, false);
    }

    const entry = new KeyEntry<K, V, C>(key, cacheKey);
    opening = entry as KeyEntry<unknown, unknown, unknown>;
    const promise = (entry.promise = new Promise<V>(captureResolvers as (resolve: (value: V) => void, reject: (reason: unknown) => void) => void));
    cacheMap.set(cacheKey, promise);
    this.#loading.set(cacheKey, entry);
    const request = new LoadRequest<K, V>(key, extras, entry as KeyEntry<K, V, unknown>);
    if (extras === undefined) {
      // This caller never gives up: its answer is the key's, so the cached promise is its own.
      request.resolve = entry.resolve;
    } else {
      entry.viaSlot = true;
      // Only the cache holds this one: a rejection reaches callers through their own promises.
      promise.catch(noop);
    }
    return this.#submit(request, extras === undefined ? promise : undefined, true);
  }

  /**
   * Loads several keys: a Promise of an array with a value or an `Error` per key (it never
   * rejects for one key's failure). The keys join batches as single loads would.
   *
   * @example
   * ```ts
   * const [ada, missing] = await users.loadMany([1, 404]); // missing instanceof Error
   * ```
   */
  loadMany(keys: ArrayLike<K>): Promise<Array<V | Error>>;
  loadMany(keys: ArrayLike<K>, options: DataLoader.LoadOptions): Promise<Array<V | Error>>;
  loadMany(keys: ArrayLike<K>, options?: DataLoader.LoadOptions): Promise<Array<V | Error>> {
    if (!isArrayLike(keys)) {
      throw new TypeError(`The loader.loadMany() function must be called with Array<key> but got: ${String(keys)}.`);
    }
    const loads: Promise<V | Error>[] = [];
    for (let i = 0; i < keys.length; i++) loads.push(this.load(keys[i], options as DataLoader.LoadOptions).catch((error: Error) => error));
    return Promise.all(loads);
  }

  /**
   * Forgets the cached value of `key`, so the next load asks `batchLoadFn` again. Returns the
   * loader, for chaining.
   *
   * @example
   * ```ts
   * users.clear(1).prime(1, updatedUser);
   * ```
   */
  clear(key: K): this {
    const cacheMap = this.#cacheMap;
    if (cacheMap !== null) cacheMap.delete(this.#cacheKeyFn.call(this, key));
    return this;
  }

  /**
   * Forgets every cached value. Returns the loader, for chaining.
   *
   * @example
   * ```ts
   * users.clearAll();
   * ```
   */
  clearAll(): this {
    this.#cacheMap?.clear();
    return this;
  }

  /**
   * Caches `value` (or a rejection, for an `Error`) for `key` unless the key is cached already.
   * Returns the loader, for chaining.
   *
   * @example
   * ```ts
   * users.prime(user.id, user);
   * ```
   */
  prime(key: K, value: V | PromiseLike<V> | Error): this {
    const cacheMap = this.#cacheMap;
    if (cacheMap !== null) {
      const cacheKey = this.#cacheKeyFn.call(this, key);
      if (cacheMap.get(cacheKey) === undefined) {
        let promise: Promise<V>;
        if (value instanceof Error) {
          promise = Promise.reject(value);
          // Primed on purpose: not an unhandled rejection until a load hands it to a caller.
          promise.catch(noop);
        } else {
          promise = Promise.resolve(value);
        }
        cacheMap.set(cacheKey, promise);
      }
    }
    return this;
  }

  /**
   * rx-batcher: the engine's stats as an immutable snapshot (keys queued, in flight, batches,
   * batch sizes, outcomes). Keys only: cache hits never reach the engine, except loads that may give up joining a key still loading (counted in `merged`).
   *
   * @example
   * ```ts
   * const { batches, meanBatchSize } = users.stats();
   * ```
   */
  stats(): BatcherStats {
    this.#snapshot = takeSnapshot(this.#snapshot, this.#engineName, this.#engine.counters, false, this.#engine.settings);
    return this.#snapshot;
  }

  /**
   * A cache hit settles with the batch it joins, as in DataLoader: with the latest load still
   * queued (if its batch has room), else with the next load, else when its own window closes.
   */
  #hit(cached: Promise<V>): Promise<V> {
    return new Promise<V>((resolve) => {
      const release = (): void => resolve(cached);
      const last = this.#lastQueued;
      if (last !== undefined && last.state === QUEUED && this.#engineInstance!.waitingInputs() % this.#maxBatchSize !== 0) {
        (last.hits ??= []).push(release);
      } else if (this.#waitingHits !== undefined) {
        this.#waitingHits.push(release);
      } else {
        const hits = [release];
        this.#waitingHits = hits;
        this.#windows.schedule(() => {
          if (this.#waitingHits !== hits) return; // a load adopted them
          this.#waitingHits = undefined;
          for (const settle of hits) settle();
        });
      }
    });
  }

  /**
   * Submits a load to the engine and returns its caller's promise (`own`, when it is the
   * cached one). A key that is refused at once (`maxQueueSize`, an aborted signal) leaves the
   * cache, and a caller that never gives up keeps its key loading.
   */
  #submit(request: LoadRequest<K, V>, own: Promise<V> | undefined, opensKey: boolean): Promise<V> {
    let promise = own;
    if (promise === undefined) {
      opening = request as LoadRequest<unknown, unknown>;
      promise = new Promise<V>(captureResolvers as (resolve: (value: V) => void, reject: (reason: unknown) => void) => void);
    }
    this.#engine.submit(request);
    const entry = request.entry as KeyEntry<K, V, C> | undefined;
    if (request.state >= SUCCEEDED) {
      if (opensKey && entry !== undefined) this.#forget(entry);
    } else {
      if (entry !== undefined && request.extras === undefined) entry.pinned = true;
      if (opensKey && request.state === QUEUED) this.#queued(request);
    }
    this.#rethrowScheduleError();
    return promise;
  }

  /** A new key is queued: cache hits join its batch. */
  #queued(request: LoadRequest<K, V>): void {
    this.#lastQueued = request;
    if (this.#waitingHits !== undefined) {
      request.hits = this.#waitingHits;
      this.#waitingHits = undefined;
    }
  }

  /**
   * With a cache, the engine shares a key's input between its loads by cache entry (not by
   * cache key: after `clear(key)` the next load is a new entry, as in DataLoader), and tells
   * the loader when the key's answer is in.
   */
  #shareRule(): ShareRule<K, V> {
    return {
      keyOf: (request) => (request as LoadRequest<K, V>).entry,
      settled: (key, outcome, result) => this.#keySettled(key as KeyEntry<K, V, C>, outcome, result),
    };
  }

  /** The key's answer is in (or every caller left): settle the cached promise, or forget it. */
  #keySettled(entry: KeyEntry<K, V, C>, outcome: SettledState, result: unknown): void {
    if (outcome === CANCELLED) return this.#forget(entry);
    if (this.#loading.get(entry.cacheKey) === entry) this.#loading.delete(entry.cacheKey);
    // DataLoader's rule: after a failed batch its keys leave the cache, so the next load asks again.
    if (outcome === BATCH_FAILED) this.clear(entry.key);
    if (!entry.viaSlot) return; // its first caller's answer settles it, in DataLoader's order
    entry.resolve(outcome === SUCCEEDED ? (result as V) : (new Rejection(result) as unknown as PromiseLike<V>));
  }

  /** The key is no longer loading and has no answer: the cache lets it go (unless it already holds another). */
  #forget(entry: KeyEntry<K, V, C>): void {
    if (this.#loading.get(entry.cacheKey) === entry) this.#loading.delete(entry.cacheKey);
    const cacheMap = this.#cacheMap!;
    if (cacheMap.get(entry.cacheKey) === entry.promise) cacheMap.delete(entry.cacheKey);
  }

  /** The engine, made when first needed: a loader that is never used costs little more than DataLoader's. */
  get #engine(): BatchEngine<K, V> {
    if (this.#engineInstance !== undefined) return this.#engineInstance;
    const config = typeof this.#config === 'function' ? this.#config() : this.#config;
    this.#config = config;
    const engine = (this.#engineInstance = new BatchEngine<K, V>(config));
    engine.settled$.subscribe({ next: (request) => request.deliver() });
    return engine;
  }

  #rethrowScheduleError(): void {
    const thrown = this.#scheduleError;
    if (thrown === undefined) return;
    this.#scheduleError = undefined;
    throw thrown.error;
  }
}

// The types that go with the class, as `dataloader`'s own typings have them: `DataLoader.Options`…
type DataLoaderInstance<K, V, C> = DataLoader<K, V, C>;
declare namespace DataLoader {
  /** The loader's type, also under the named import: `import { DataLoader } from 'rx-batcher/dataloader'`. */
  type DataLoader<K, V, C = K> = DataLoaderInstance<K, V, C>;
  /** Given the keys of one batch, a Promise of one value or `Error` per key, in order. */
  type BatchLoadFn<K, V> = BatchLoadFnType<K, V>;
  /** DataLoader's options, plus rx-batcher's (`maxConcurrentBatches`, `maxQueueSize`, `scheduler`). */
  type Options<K, V, C = K> = DataLoaderOptions<K, V, C>;
  /** A `Map`, or anything with its `get`, `set`, `delete` and `clear`. */
  type CacheMap<K, V> = CacheMapType<K, V>;
  /** rx-batcher: `load(key, { signal, timeoutMs })`. */
  type LoadOptions = LoadOptionsType;
}

export { DataLoader };
/** The class as the default export too, as `import DataLoader from 'dataloader'` expects (the ES module entry is this file). */
export default DataLoader;

/**
 * A key loading with a cache: its cached promise and what settles it. The engine shares one
 * input between the loads that join it (their own `signal` and `timeoutMs` apply to each).
 */
class KeyEntry<K, V, C> {
  /** Only the promise's `resolve` is kept (as `Batcher` does): a failure resolves it with a `Rejection`. */
  resolve: (value: V | PromiseLike<V>) => void = noop;
  promise!: Promise<V>;
  /** A caller that never gives up waits for the key: later plain loads are cache hits. */
  pinned = false;
  /** Its first caller may give up, so the engine's word on the key settles the cached promise. */
  viaSlot = false;

  constructor(
    readonly key: K,
    readonly cacheKey: C,
  ) {}
}

/** One load in the engine: settles its promise, and the cache hits that joined its batch. */
class LoadRequest<K, V> extends EngineRequest<K, V> {
  /** Only the promise's `resolve` is kept (see `PromiseRequest` in Batcher.ts): a failure resolves it with a `Rejection`. */
  resolve: (value: V | PromiseLike<V>) => void = noop;
  /** Cache hits that settle with this key's batch, just before it. */
  hits: (() => void)[] | undefined = undefined;

  constructor(
    key: K,
    extras: RequestExtras | undefined,
    /** With a cache, the key's entry: the engine shares one input between loads of the same entry. */
    readonly entry: KeyEntry<K, V, unknown> | undefined,
  ) {
    super(key);
    this.extras = extras;
  }

  deliver(): void {
    const hits = this.hits;
    if (hits !== undefined) {
      this.hits = undefined;
      for (let i = 0; i < hits.length; i++) hits[i]();
    }
    this.resolve(this.state === SUCCEEDED ? (this.result as V) : (new Rejection(this.result) as unknown as PromiseLike<V>));
  }
}

function noop(): void {}

/** What the promise being created settles (set just before `new Promise`). */
let opening: { resolve: (value: unknown) => void } | undefined;

function captureResolvers(resolve: (value: unknown) => void): void {
  opening!.resolve = resolve;
  opening = undefined;
}
