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
import { map, type Observable, type Subscription } from 'rxjs';
import { BatchEngine } from '../core/batchEngine.js';
import type { BatchConfig } from '../core/config.js';
import { BATCH_FAILED, EngineRequest, QUEUED, Rejection, REJECTED, SUCCEEDED } from '../core/request.js';
import { toSettlement } from '../core/toSettlement.js';
import { RequestTimeoutError } from '../errors/RequestTimeoutError.js';
import { takeSnapshot, type BatcherStats } from '../stats/statsSnapshot.js';
import type { Settlement } from '../types.js';
import { dataLoaderRunBatch, isArrayLike, type BatchLoadFn as BatchLoadFnType } from './contract.js';
import {
  checkLoaderOptions,
  checkLoadOptions,
  engineConfig,
  engineName,
  rxBatcherOptions,
  TIMEOUT_HINT,
  type CacheMap as CacheMapType,
  type DataLoaderOptions,
  type LoadOptions as LoadOptionsType,
} from './options.js';
import { dataLoaderScheduler, type CallbackScheduler } from './scheduling.js';

/**
 * DataLoader 2.2.3's API on rx-batcher's engine: the same constructor, options, methods,
 * scheduling and messages, so switching is one import line. The loader owns what is
 * DataLoader's own (the promise cache, keys, its contract with `batchLoadFn`); batches are
 * formed, sealed, run and settled by the engine that runs `Batcher` and `batchMap`.
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
  /** Keys first loaded with `signal`/`timeoutMs`, by their cached promise: later loads of the key count as their callers. */
  #givingUp: WeakMap<Promise<V>, Callers<K, V, C>> | undefined = undefined;
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
    const build = (): BatchConfig<K, V> => engineConfig<K, V>(engineOptions, settings, dataLoaderRunBatch(batchLoadFn, this), this.#windows);
    // rx-batcher's own options are checked now, so bad ones throw here as DataLoader's do.
    this.#config = engineOptions === undefined ? build : build();
  }

  /**
   * rx-batcher: every key's settlement, once, as `Batcher.results$` has them: a
   * `Promise.allSettled` entry plus `id` and `input` (the key). Cache hits and primed keys never
   * reach the engine and do not appear. Hot: subscribe before loading to see everything.
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
    const giveUp = options === undefined ? undefined : checkLoadOptions(this.#engineName, options);
    if (giveUp?.signal?.aborted) return Promise.reject(giveUp.signal.reason);

    const cacheMap = this.#cacheMap;
    let cacheKey: C | undefined;
    if (cacheMap !== null) {
      cacheKey = this.#cacheKeyFn.call(this, key);
      const cached = cacheMap.get(cacheKey);
      if (cached) {
        const hit = this.#hit(cached);
        const callers = this.#givingUp?.get(cached);
        this.#rethrowScheduleError();
        if (giveUp === undefined) {
          if (callers !== undefined) callers.pinned = true; // a caller that never gives up: keep the key
          return hit;
        }
        if (callers !== undefined) callers.mayLeave++;
        return this.#race(hit, callers, giveUp);
      }
    }

    const request = new LoadRequest<K, V>(key);
    opening = request as LoadRequest<unknown, unknown>;
    const promise = new Promise<V>(captureResolvers as (resolve: (value: V) => void, reject: (reason: unknown) => void) => void);
    if (cacheMap !== null) cacheMap.set(cacheKey as C, promise);
    let callers: Callers<K, V, C> | undefined;
    if (giveUp !== undefined) {
      callers = { request, promise, cacheKey, mayLeave: 1, pinned: false };
      if (cacheMap !== null) (this.#givingUp ??= new WeakMap()).set(promise, callers);
    }
    this.#engine.submit(request);
    if (request.state === REJECTED) {
      // Refused at once (maxQueueSize): no answer to keep.
      if (cacheMap !== null && cacheMap.get(cacheKey as C) === promise) cacheMap.delete(cacheKey as C);
    } else if (request.state === QUEUED) {
      this.#lastQueued = request;
      if (this.#waitingHits !== undefined) {
        request.hits = this.#waitingHits;
        this.#waitingHits = undefined;
      }
    }
    this.#rethrowScheduleError();
    return giveUp === undefined ? promise : this.#race(promise, callers, giveUp);
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
   * batch sizes, outcomes). Keys only: cache hits never reach the engine.
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
      if (last !== undefined && last.state === QUEUED && this.#engineInstance!.counters.queued % this.#maxBatchSize !== 0) {
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

  /** One caller's promise: the key's outcome, unless this caller gives up first. */
  #race(shared: Promise<V>, callers: Callers<K, V, C> | undefined, giveUp: { signal: AbortSignal | undefined; timeoutMs: number }): Promise<V> {
    const { signal, timeoutMs } = giveUp;
    return new Promise<V>((resolve, reject) => {
      let waiting = true;
      let timer: Subscription | undefined;
      const done = (): boolean => {
        if (!waiting) return false;
        waiting = false;
        signal?.removeEventListener('abort', onAbort);
        timer?.unsubscribe();
        return true;
      };
      const leave = (reason: unknown): void => {
        if (!done()) return;
        reject(reason);
        if (callers !== undefined) this.#leave(callers, reason);
      };
      const onAbort = (): void => leave(signal!.reason);
      shared.then(
        (value) => done() && resolve(value),
        (error: unknown) => done() && reject(error),
      );
      signal?.addEventListener('abort', onAbort);
      if (timeoutMs !== Infinity) {
        timer = this.#engine.config.deadlineScheduler.schedule(() => {
          const phase = callers !== undefined && callers.request.state === QUEUED ? 'queued' : 'running';
          leave(new RequestTimeoutError(this.#engineName, timeoutMs, phase, TIMEOUT_HINT));
        }, timeoutMs);
      }
    });
  }

  /** The engine, made when first needed: a loader that is never used costs little more than DataLoader's. */
  get #engine(): BatchEngine<K, V> {
    if (this.#engineInstance !== undefined) return this.#engineInstance;
    const config = typeof this.#config === 'function' ? this.#config() : this.#config;
    this.#config = config;
    const engine = (this.#engineInstance = new BatchEngine<K, V>(config));
    engine.settled$.subscribe({
      next: (request) => {
        // DataLoader's rule: after a failed batch its keys leave the cache, so the next load asks again.
        if (request.state === BATCH_FAILED) this.clear(request.input);
        request.deliver();
      },
    });
    return engine;
  }

  /** A caller of a key gave up: when no caller is left, the engine drops the key, and the cache forgets it. */
  #leave(callers: Callers<K, V, C>, reason: unknown): void {
    callers.mayLeave--;
    if (callers.mayLeave > 0 || callers.pinned || callers.request.isSettled) return;
    this.#engine.cancel(callers.request, reason);
    const cacheMap = this.#cacheMap;
    if (cacheMap !== null && cacheMap.get(callers.cacheKey as C) === callers.promise) cacheMap.delete(callers.cacheKey as C);
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
 * The callers of a key first loaded with `signal` or `timeoutMs` (the only ones that can give
 * up): the key is dropped when the last of them has, unless a caller that cannot give up waits too.
 */
interface Callers<K, V, C> {
  readonly request: LoadRequest<K, V>;
  /** The key's promise, and its cache key (to forget it only if the cache still holds it). */
  readonly promise: Promise<V>;
  readonly cacheKey: C | undefined;
  /** Callers still waiting that may give up. */
  mayLeave: number;
  /** A caller that cannot give up waits for the key too. */
  pinned: boolean;
}

/** One key in the engine: settles its promise, and the cache hits that joined its batch. */
class LoadRequest<K, V> extends EngineRequest<K, V> {
  /** Only the promise's `resolve` is kept (see `PromiseRequest` in Batcher.ts): a failure resolves it with a `Rejection`. */
  resolve: (value: V | PromiseLike<V>) => void = noop;
  /** Cache hits that settle with this key's batch, just before it. */
  hits: (() => void)[] | undefined = undefined;

  deliver(): void {
    const hits = this.hits;
    if (hits !== undefined) {
      this.hits = undefined;
      for (let i = 0; i < hits.length; i++) hits[i]();
    }
    if (this.state === SUCCEEDED) this.resolve(this.place as V);
    else this.resolve(new Rejection(this.place) as unknown as V);
  }
}

function noop(): void {}

/** The request whose promise is being created (set just before `new Promise`). */
let opening: LoadRequest<unknown, unknown> | undefined;

function captureResolvers(resolve: (value: unknown) => void): void {
  opening!.resolve = resolve;
  opening = undefined;
}
