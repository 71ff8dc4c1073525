import type { SchedulerLike } from 'rxjs';
import type { BatchConfig } from '../core/config.js';
import type { ShareRule } from '../core/dedupe.js';
import { RequestExtras } from '../core/request.js';
import { checkRunOptions, normalizeOptions, type FaceRules } from '../options/normalizeOptions.js';
import type { RunBatch } from '../types.js';

/**
 * A cache for a loader's promises, by cache key: `Map` or anything with the same four methods
 * (an LRU, say). DataLoader's `CacheMap`.
 *
 * @example
 * ```ts
 * const cacheMap: CacheMap<string, Promise<User>> = new Map();
 * ```
 */
export interface CacheMap<K, V> {
  get(key: K): V | void;
  set(key: K, value: V): unknown;
  delete(key: K): unknown;
  clear(): unknown;
}

/**
 * The options of `new DataLoader(batchLoadFn, options)`: DataLoader 2.2.3's, with the same
 * defaults and checks, plus what rx-batcher adds (`maxConcurrentBatches`, `maxQueueSize`,
 * `scheduler`).
 *
 * @example
 * ```ts
 * const options: DataLoaderOptions<string, User> = { maxBatchSize: 100, maxConcurrentBatches: 4 };
 * ```
 */
export interface DataLoaderOptions<K, V, C = K> {
  /**
   * `false`: every key is a batch of its own, as `maxBatchSize: 1`.
   * @default true
   */
  batch?: boolean;
  /**
   * The most keys one `batchLoadFn` call receives. Keys that arrive in the same tick are cut
   * into batches of this size when the tick ends (never earlier: `batchLoadFn` never runs inside
   * `load()`).
   * @default Infinity
   */
  maxBatchSize?: number;
  /** When a batch closes: it closes when this calls `callback`. Default: at the end of the tick, after its promise jobs. */
  batchScheduleFn?: (callback: () => void) => void;
  /**
   * `false`: no memoization; every `load()` puts its key in a batch, repeats included.
   * @default true
   */
  cache?: boolean;
  /** The cache key of a load key, e.g. `(key) => JSON.stringify(key)` for object keys. @default the key itself */
  cacheKeyFn?: (key: K) => C;
  /** The cache, or `null` for none. @default new Map() */
  cacheMap?: CacheMap<C, Promise<V>> | null;
  /** The loader's `name` (for APM tools), also in rx-batcher's messages and stats. @default null */
  name?: string | null;
  /**
   * rx-batcher: batches running at once. With a limit, batches are sealed late: keys that
   * arrive while every slot is busy wait, and the next batch takes up to `maxBatchSize` of the
   * oldest when a slot frees.
   * @default Infinity (DataLoader's behaviour)
   */
  maxConcurrentBatches?: number;
  /**
   * rx-batcher: keys allowed to wait for a batch; beyond it `load()` rejects at once with
   * `QueueFullError` (and the key is not cached).
   * @default Infinity
   */
  maxQueueSize?: number;
  /** rx-batcher: the clock for `load(key, { timeoutMs })`, e.g. a `TestScheduler`. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/**
 * Per-call options of `loader.load(key, options)` and `loader.loadMany(keys, options)` (an
 * rx-batcher addition: DataLoader's `load` takes one argument, and a second one that is not an
 * object, such as the index `Array.prototype.map` passes, is ignored).
 *
 * @example
 * ```ts
 * const user = await loader.load(id, { signal: request.signal, timeoutMs: 500 });
 * ```
 */
export interface LoadOptions {
  /**
   * This call gives up when it aborts, rejecting with `signal.reason`. When no other caller
   * waits for the key, the key leaves its queue (it never reaches `batchLoadFn`) and the cache.
   * A load answered from the cache has nothing to give up (only an already aborted signal rejects it).
   */
  readonly signal?: AbortSignal;
  /** This call gives up after this many ms (a `RequestTimeoutError`), with the same effect as an abort; `Infinity` for none. */
  readonly timeoutMs?: number;
}

/**
 * DataLoader's options as the loader keeps them, checked.
 *
 * @example
 * ```ts
 * const { maxBatchSize, cacheMap } = checkLoaderOptions(batchLoadFn, { batch: false }); // 1, a new Map
 * ```
 */
export interface LoaderSettings<K, V, C> {
  readonly cacheKeyFn: (key: K) => C;
  readonly cacheMap: CacheMap<C, Promise<V>> | null;
  readonly batchScheduleFn: ((callback: () => void) => void) | undefined;
  /** DataLoader's `maxBatchSize` as the engine counts it: a whole number of keys, or Infinity. */
  readonly maxBatchSize: number;
  readonly name: string | null;
}

/**
 * What a `RequestTimeoutError` from `load(key, { timeoutMs })` advises.
 *
 * @example
 * ```ts
 * new RequestTimeoutError('users', 50, 'queued', TIMEOUT_HINT);
 * ```
 */
export const TIMEOUT_HINT = 'Raise timeoutMs, or make batchLoadFn answer sooner (maxConcurrentBatches, if set, limits how many batches run at once).';

/** The options the engine takes from a loader's: rx-batcher's additions and the name. */
const DATALOADER_FACE: FaceRules = {
  defaultName: 'DataLoader',
  keys: ['name', 'maxBatchSize', 'maxConcurrentBatches', 'maxQueueSize', 'scheduler'],
  maxBatchSizeDefault: Infinity,
  maxConcurrentBatchesDefault: Infinity,
  timeoutHint: TIMEOUT_HINT,
};

const CONSTRUCTOR_CONTRACT = 'DataLoader must be constructed with a function which accepts Array<key> and returns Promise<Array<value>>';

/**
 * Checks `new DataLoader(batchLoadFn, options)` exactly as DataLoader 2.2.3 does (same order,
 * same `TypeError` messages, same leniency: unknown options are ignored), then rx-batcher's
 * additions through {@link normalizeOptions}, like every face.
 *
 * @example
 * ```ts
 * const { settings, engineOptions } = checkLoaderOptions(batchLoadFn, { maxBatchSize: 100 });
 * ```
 */
export function checkLoaderOptions<K, V, C>(batchLoadFn: unknown, options: DataLoaderOptions<K, V, C> | undefined): LoaderSettings<K, V, C> {
  if (typeof batchLoadFn !== 'function') {
    throw new TypeError(`${CONSTRUCTOR_CONTRACT}, but got: ${String(batchLoadFn)}.`);
  }
  // `options && options.x` as DataLoader reads them: `null` options reach the checks as `null`.
  const read = <T>(pick: (o: DataLoaderOptions<K, V, C>) => T): T | null | undefined => (options ? pick(options) : (options as null | undefined));
  return {
    maxBatchSize: validMaxBatchSize(options),
    batchScheduleFn: validFunction('batchScheduleFn', read((o) => o.batchScheduleFn)),
    cacheKeyFn: validFunction('cacheKeyFn', read((o) => o.cacheKeyFn)) ?? ((key: K) => key as unknown as C),
    cacheMap: validCacheMap(options),
    name: (options && options.name) || null,
  };
}

/**
 * rx-batcher's own options among a loader's, as given (read once, at construction).
 *
 * @example
 * ```ts
 * const extras: RxBatcherOptions = { maxConcurrentBatches: 4, maxQueueSize: undefined, scheduler: undefined };
 * ```
 */
export type RxBatcherOptions = Pick<DataLoaderOptions<unknown, unknown>, 'maxConcurrentBatches' | 'maxQueueSize' | 'scheduler'>;

/**
 * rx-batcher's options among a loader's, read once as DataLoader reads its own; `undefined`
 * when none is given (the engine's rules then cannot be wrong, and are built when first needed).
 *
 * @example
 * ```ts
 * rxBatcherOptions({ maxBatchSize: 10 }); // undefined
 * ```
 */
export function rxBatcherOptions(options: Pick<DataLoaderOptions<unknown, unknown>, keyof RxBatcherOptions> | undefined): RxBatcherOptions | undefined {
  if (!options) return undefined;
  const { maxConcurrentBatches, maxQueueSize, scheduler } = options;
  if (maxConcurrentBatches === undefined && maxQueueSize === undefined && scheduler === undefined) return undefined;
  return { maxConcurrentBatches, maxQueueSize, scheduler };
}

/**
 * The name rx-batcher's messages and stats give a loader: its `name`, or `'DataLoader'`.
 *
 * @example
 * ```ts
 * engineName(checkLoaderOptions(fn, { name: 'users' })); // 'users'
 * ```
 */
export function engineName(settings: Pick<LoaderSettings<unknown, unknown, unknown>, 'name'>): string {
  return typeof settings.name === 'string' && settings.name.length > 0 ? settings.name : DATALOADER_FACE.defaultName;
}

/**
 * The engine's rules for a loader: rx-batcher's options checked by {@link normalizeOptions}
 * (its messages, naming the loader), DataLoader's `maxBatchSize`, no window of its own
 * (`windowScheduler` says when a batch closes), and full queues wait for that moment.
 *
 * @example
 * ```ts
 * const config = engineConfig(rxBatcherOptions(options), settings, runBatch, windows);
 * ```
 */
export function engineConfig<K, V>(
  options: RxBatcherOptions | undefined,
  settings: LoaderSettings<K, V, unknown>,
  runBatch: RunBatch<K, V>,
  windowScheduler: SchedulerLike,
  share?: ShareRule<K, V>,
): BatchConfig<K, V> {
  const engineOptions: Record<string, unknown> = { name: engineName(settings) };
  if (settings.maxBatchSize !== Infinity) engineOptions.maxBatchSize = settings.maxBatchSize;
  if (options?.maxConcurrentBatches !== undefined) engineOptions.maxConcurrentBatches = options.maxConcurrentBatches;
  if (options?.maxQueueSize !== undefined) engineOptions.maxQueueSize = options.maxQueueSize;
  if (options?.scheduler !== undefined) engineOptions.scheduler = options.scheduler;
  const config = normalizeOptions<K, V>(engineOptions, runBatch, DATALOADER_FACE);
  return Object.freeze({ ...config, maxDelayMs: 0, windowScheduler, fullWaitsForWindow: true, share });
}

/**
 * Checks `load(key, options)`'s options by `run()`'s rules (the fields `signal` and
 * `timeoutMs`) and turns them into what the engine reads; `undefined` when there is nothing to
 * honour. A second argument that is not an object (the index `ids.map(loader.load, loader)`
 * passes) is ignored, as DataLoader ignores extra arguments. Throws a `TypeError` or
 * `RangeError` naming the field, as DataLoader's own checks throw.
 *
 * @example
 * ```ts
 * const extras = loadExtras('users', { timeoutMs: 500 }); // the engine gives this load 500 ms
 * ```
 */
export function loadExtras(name: string, options: unknown): RequestExtras | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return undefined;
  const timeoutMs = checkRunOptions(name, options, 0, 'load(key, options)', LOAD_OPTIONS);
  if (timeoutMs instanceof Error) throw timeoutMs;
  const signal = (options as LoadOptions).signal;
  // 0: the call set no timeout (a loader has none of its own); Infinity: it asked for none.
  return signal === undefined && timeoutMs === 0 ? undefined : new RequestExtras(signal, timeoutMs);
}

const LOAD_OPTIONS: readonly string[] = ['signal', 'timeoutMs'];

// Private: DataLoader's own checks, in its words.

function validMaxBatchSize<K, V, C>(options: DataLoaderOptions<K, V, C> | undefined): number {
  if (options && options.batch === false) return 1;
  const maxBatchSize = options && options.maxBatchSize;
  if (maxBatchSize === undefined) return Infinity;
  if (typeof maxBatchSize !== 'number' || maxBatchSize < 1) {
    throw new TypeError(`maxBatchSize must be a positive number: ${String(maxBatchSize)}`);
  }
  // DataLoader adds keys while a batch holds fewer than maxBatchSize: 2.5 means batches of 3,
  // and NaN (never "fewer than") batches of 1.
  return Number.isNaN(maxBatchSize) ? 1 : Math.ceil(maxBatchSize);
}

function validFunction<F>(option: string, value: F | null | undefined): F | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new TypeError(`${option} must be a function: ${String(value)}`);
  return value;
}

function validCacheMap<K, V, C>(options: DataLoaderOptions<K, V, C> | undefined): CacheMap<C, Promise<V>> | null {
  if (options && options.cache === false) return null;
  const cacheMap = options && options.cacheMap;
  if (cacheMap === undefined) return new Map<C, Promise<V>>();
  if (cacheMap !== null) {
    const missing = ['get', 'set', 'delete', 'clear'].filter((method) => typeof (cacheMap as unknown as Record<string, unknown>)[method] !== 'function');
    if (missing.length !== 0) throw new TypeError(`Custom cacheMap missing methods: ${missing.join(', ')}`);
  }
  return cacheMap;
}
