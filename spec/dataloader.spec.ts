/**
 * `rx-batcher/dataloader` beyond what DataLoader's own suite checks (spec/peer/dataloader):
 * the module's shape, DataLoader's rules that suite does not pin down, and what switching adds
 * (per-load `signal` and `timeoutMs`, `maxConcurrentBatches` with late sealing, `maxQueueSize`,
 * `stats()`, `results$`). Windows close when the test says (a `batchScheduleFn` that holds its
 * callbacks), deadlines run on a manual clock, batches finish when the test answers them.
 */
import DataLoader = require('rx-batcher/dataloader');
import { QueueFullError, RequestTimeoutError, type Settlement } from '../lib';
import { ManualScheduler } from './helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from './helpers/recording';

/** A loader whose windows close on `closeWindows()` and whose batches finish on `answer(i)` (value: key × 10). */
function heldLoader(options: DataLoader.Options<number, number> = {}) {
  const windows: (() => void)[] = [];
  const batches: { keys: number[]; done: Deferred<ArrayLike<number | Error>> }[] = [];
  const loader = new DataLoader<number, number>(
    (keys) => {
      const done = deferred<ArrayLike<number | Error>>();
      batches.push({ keys: [...keys], done });
      return done.promise;
    },
    { batchScheduleFn: (callback) => windows.push(callback), ...options },
  );
  const closeWindows = (): void => {
    for (const close of windows.splice(0)) close();
  };
  const answer = (i: number): void => batches[i].done.resolve(batches[i].keys.map((k) => k * 10));
  const keysOf = () => batches.map((b) => b.keys);
  return { loader, batches, closeWindows, answer, keysOf };
}

describe('rx-batcher/dataloader: the module', () => {
  it('is the class, as require("dataloader") is, and names it as well', () => {
    const required = require('rx-batcher/dataloader');
    expect(typeof required).toBe('function');
    expect(required).toBe(DataLoader);
    expect(required.DataLoader).toBe(DataLoader);
    expect(new required(async (keys: number[]) => keys)).toBeInstanceOf(DataLoader);
  });
});

describe('rx-batcher/dataloader: DataLoader rules the peer suite leaves open', () => {
  it('never calls batchLoadFn inside load(), even when the queue reaches maxBatchSize: batches are cut when the window closes', () => {
    const { loader, closeWindows, keysOf } = heldLoader({ maxBatchSize: 2 });
    for (const key of [1, 2, 3, 4, 5]) void loader.load(key);
    expect(keysOf()).toEqual([]);
    closeWindows();
    expect(keysOf()).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('a non-integer maxBatchSize fills batches while they hold fewer keys, as DataLoader does (2.5: up to 3)', () => {
    const { loader, closeWindows, keysOf } = heldLoader({ maxBatchSize: 2.5 });
    for (const key of [1, 2, 3, 4]) void loader.load(key);
    closeWindows();
    expect(keysOf()).toEqual([[1, 2, 3], [4]]);
  });

  it('after a failed batch its keys leave the cache, so the next load asks again; an Error in a key\'s own slot stays cached', async () => {
    const { loader, batches, closeWindows, keysOf } = heldLoader();
    const failing = outcome(loader.load(1));
    closeWindows();
    batches[0].done.reject(new Error('database down'));
    await settleMicrotasks();
    expect(failing.error).toEqual(new Error('database down'));
    const retried = outcome(loader.load(1));
    closeWindows();
    batches[1].done.resolve([new Error('no user 1')]);
    await settleMicrotasks();
    expect(retried.error).toEqual(new Error('no user 1'));
    const cached = outcome(loader.load(1));
    closeWindows();
    await settleMicrotasks();
    expect(cached.error).toEqual(new Error('no user 1'));
    expect(keysOf()).toEqual([[1], [1]]);
  });

  it('a batchScheduleFn that calls back at once closes the batch at the end of the synchronous run (DataLoader would never settle that load)', async () => {
    const calls: number[][] = [];
    const loader = new DataLoader<number, number>(
      async (keys) => (calls.push([...keys]), keys.map((k) => k + 1)),
      { batchScheduleFn: (callback) => callback() },
    );
    const both = Promise.all([loader.load(1), loader.load(2)]);
    expect(calls).toEqual([]);
    await expect(both).resolves.toEqual([2, 3]);
    expect(calls).toEqual([[1, 2]]);
  });

  it('a batch closes once even if batchScheduleFn calls back twice', () => {
    const windows: (() => void)[] = [];
    const calls: number[][] = [];
    const loader = new DataLoader<number, number>(async (keys) => (calls.push([...keys]), keys), {
      batchScheduleFn: (callback) => windows.push(callback, callback),
    });
    void loader.load(1);
    for (const close of windows.splice(0)) close();
    expect(calls).toEqual([[1]]);
  });

  it('when batchScheduleFn throws, load() throws it (as DataLoader does), and the batch still closes on the default tick', async () => {
    let fail = true;
    const loader = new DataLoader<number, number>(async (keys) => keys.map((k) => k * 2), {
      batchScheduleFn: (callback) => {
        if (fail) throw new Error('scheduler broken');
        callback();
      },
    });
    expect(() => loader.load(1)).toThrow(new Error('scheduler broken'));
    fail = false;
    await expect(loader.load(1)).resolves.toBe(2); // the first load's key was loaded after all, and cached
  });
});

describe('rx-batcher/dataloader: load(key, { signal })', () => {
  it('aborting a queued load rejects it with the reason; the key never reaches batchLoadFn and is not cached', async () => {
    const { loader, closeWindows, keysOf, answer } = heldLoader();
    const controller = new AbortController();
    const aborted = outcome(loader.load(1, { signal: controller.signal }));
    const other = outcome(loader.load(2));
    controller.abort(new Error('client went away'));
    await settleMicrotasks();
    expect(aborted.error).toEqual(new Error('client went away'));
    closeWindows();
    expect(keysOf()).toEqual([[2]]);
    answer(0);
    await settleMicrotasks();
    expect(other.value).toBe(20);
    const again = outcome(loader.load(1));
    closeWindows();
    answer(1);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[2], [1]]);
    expect(again.value).toBe(10);
    expect(loader.stats()).toMatchObject({ submitted: 3, succeeded: 2, cancelled: 1 });
  });

  it('a key stays while another caller waits for it: a plain load of the same key keeps it', async () => {
    const { loader, closeWindows, keysOf, answer } = heldLoader();
    const controller = new AbortController();
    const leaving = outcome(loader.load(1, { signal: controller.signal }));
    const staying = outcome(loader.load(1));
    controller.abort();
    await settleMicrotasks();
    expect(leaving.error).toBeInstanceOf(DOMException);
    closeWindows();
    answer(0);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[1]]);
    expect(staying.value).toBe(10);
  });

  it('with several callers that may give up, the key goes when the last one has', async () => {
    const { loader, closeWindows, keysOf } = heldLoader();
    const [a, b] = [new AbortController(), new AbortController()];
    const first = outcome(loader.load(1, { signal: a.signal }));
    const second = outcome(loader.load(1, { signal: b.signal }));
    void loader.load(2);
    a.abort('a left');
    await settleMicrotasks();
    expect([first.error, second.settled]).toEqual(['a left', false]);
    b.abort('b left');
    await settleMicrotasks();
    expect(second.error).toBe('b left');
    closeWindows();
    expect(keysOf()).toEqual([[2]]);
  });

  it('aborting while the batch runs rejects the caller at once; when every caller of the batch has gone it is abandoned, and a late answer is dropped', async () => {
    const { loader, batches, closeWindows } = heldLoader();
    const controller = new AbortController();
    const gone = outcome(loader.load(1, { signal: controller.signal }));
    closeWindows();
    controller.abort('stop');
    await settleMicrotasks();
    expect(gone.error).toBe('stop');
    expect(loader.stats()).toMatchObject({ abandonedBatches: 1, batchesInFlight: 0, cancelled: 1 });
    batches[0].done.resolve([10]);
    await settleMicrotasks();
    expect(loader.stats()).toMatchObject({ succeeded: 0, cancelled: 1 });
  });

  it('an already aborted signal rejects at once and loads nothing', async () => {
    const { loader, closeWindows, keysOf } = heldLoader();
    await expect(loader.load(1, { signal: AbortSignal.abort('too late') })).rejects.toBe('too late');
    closeWindows();
    expect(keysOf()).toEqual([]);
  });

  it('works without a cache too: every load is its own key', async () => {
    const { loader, closeWindows, keysOf } = heldLoader({ cache: false });
    const controller = new AbortController();
    const gone = outcome(loader.load(1, { signal: controller.signal }));
    void loader.load(1);
    controller.abort('bye');
    await settleMicrotasks();
    expect(gone.error).toBe('bye');
    closeWindows();
    expect(keysOf()).toEqual([[1]]);
  });

  it('a load answered from the cache has nothing to give up: it gets the cached value (an already aborted signal still rejects)', async () => {
    const { loader, closeWindows, keysOf } = heldLoader();
    loader.prime(7, 70);
    const controller = new AbortController();
    const hit = outcome(loader.load(7, { signal: controller.signal }));
    controller.abort('no thanks');
    closeWindows();
    await settleMicrotasks();
    expect(hit.value).toBe(70);
    await expect(loader.load(7, { signal: AbortSignal.abort('too late') })).rejects.toBe('too late');
    expect(keysOf()).toEqual([]);
  });

  it('loads of a key still loading, all of which may give up, share one input in the engine: each leaves alone, the last one out takes the key with it', async () => {
    const scheduler = new ManualScheduler();
    const { loader, closeWindows, keysOf, answer } = heldLoader({ scheduler });
    const controller = new AbortController();
    const first = outcome(loader.load(1, { signal: controller.signal }));
    const second = outcome(loader.load(1, { timeoutMs: 30 }));
    expect(loader.stats()).toMatchObject({ submitted: 2, merged: 1, queued: 2 });
    closeWindows();
    expect(keysOf()).toEqual([[1]]);
    scheduler.advance(30);
    await settleMicrotasks();
    expect((second.error as RequestTimeoutError).phase).toBe('running');
    expect(first.settled).toBe(false);
    expect(loader.stats()).toMatchObject({ abandonedBatches: 0, inFlight: 1 });
    controller.abort('gone');
    await settleMicrotasks();
    expect(first.error).toBe('gone');
    expect(loader.stats()).toMatchObject({ abandonedBatches: 1, inFlight: 0, cancelled: 1, timedOut: 1 });
    answer(0); // too late: nobody waits, and the key is not cached
    const again = outcome(loader.load(1));
    closeWindows();
    answer(1);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[1], [1]]);
    expect(again.value).toBe(10);
  });

  it('a key first loaded by callers that may give up is cached with its answer when one of them stays', async () => {
    const { loader, closeWindows, answer, batches } = heldLoader();
    const [a, b] = [new AbortController(), new AbortController()];
    const first = outcome(loader.load(1, { signal: a.signal }));
    const second = outcome(loader.load(1, { signal: b.signal }));
    a.abort('a left');
    closeWindows();
    answer(0);
    await settleMicrotasks();
    expect([first.error, second.value]).toEqual(['a left', 10]);
    const cached = outcome(loader.load(1));
    closeWindows();
    await settleMicrotasks();
    expect(cached.value).toBe(10);
    expect(batches).toHaveLength(1);
  });

  it('a failed batch rejects every caller of its keys, and its keys leave the cache, whether or not their first caller could give up', async () => {
    const { loader, closeWindows, batches, keysOf } = heldLoader();
    const mayLeave = outcome(loader.load(1, { timeoutMs: 1000 }));
    const plain = outcome(loader.load(2));
    closeWindows();
    batches[0].done.reject(new Error('db down'));
    await settleMicrotasks();
    expect([mayLeave.error, plain.error]).toEqual([new Error('db down'), new Error('db down')]);
    void loader.load(1);
    void loader.load(2);
    closeWindows();
    expect(keysOf()).toEqual([[1, 2], [1, 2]]);
  });

  it('after clear(key) a load of the key is a new input, even while the old one is loading', async () => {
    const { loader, closeWindows, keysOf, answer } = heldLoader();
    const old = outcome(loader.load(1, { timeoutMs: 1000 }));
    closeWindows();
    loader.clear(1);
    const fresh = outcome(loader.load(1, { timeoutMs: 1000 }));
    closeWindows();
    expect(keysOf()).toEqual([[1], [1]]);
    answer(0);
    answer(1);
    await settleMicrotasks();
    expect([old.value, fresh.value]).toEqual([10, 10]);
  });

  it('object keys share by cache key: a cacheKeyFn lets equal objects join the same loading key', async () => {
    const keys: { id: number }[][] = [];
    const loader = new DataLoader<{ id: number }, number, number>(async (batch) => (keys.push([...batch]), batch.map((k) => k.id)), {
      cacheKeyFn: (key) => key.id,
    });
    const controller = new AbortController();
    const [a, b] = [outcome(loader.load({ id: 1 }, { signal: controller.signal })), outcome(loader.load({ id: 1 }, { timeoutMs: 5000 }))];
    controller.abort('bye');
    await settleMicrotasks();
    await new Promise((resolve) => setImmediate(resolve));
    expect([a.error, b.value]).toEqual(['bye', 1]);
    expect(keys).toEqual([[{ id: 1 }]]);
  });

  it('a key refused at once (maxQueueSize) leaves the cache, so the next load asks again', async () => {
    const { loader, closeWindows, keysOf } = heldLoader({ maxQueueSize: 1 });
    void loader.load(1);
    await expect(loader.load(2, { timeoutMs: 100 })).rejects.toThrow(/queue is full/);
    closeWindows();
    void loader.load(2);
    closeWindows();
    expect(keysOf()).toEqual([[1], [2]]);
  });
});

describe('rx-batcher/dataloader: load(key, { timeoutMs })', () => {
  it('a queued load times out with a RequestTimeoutError naming the loader; the key leaves the queue and the cache', async () => {
    const scheduler = new ManualScheduler();
    const { loader, closeWindows, keysOf } = heldLoader({ name: 'users', scheduler });
    const late = outcome(loader.load(1, { timeoutMs: 50 }));
    scheduler.advance(49);
    await settleMicrotasks();
    expect(late.settled).toBe(false);
    scheduler.advance(1);
    await settleMicrotasks();
    expect(late.error).toBeInstanceOf(RequestTimeoutError);
    expect((late.error as Error).message).toBe(
      '[rx-batcher] "users": the request timed out after 50 ms while waiting in the queue. Raise timeoutMs, or make batchLoadFn answer sooner (maxConcurrentBatches, if set, limits how many batches run at once).',
    );
    closeWindows();
    expect(keysOf()).toEqual([]);
  });

  it('a running load times out too ("while its batch was running"); one that settles in time clears its timer', async () => {
    const scheduler = new ManualScheduler();
    const { loader, closeWindows, answer } = heldLoader({ scheduler });
    const slow = outcome(loader.load(1, { timeoutMs: 10 }));
    closeWindows();
    scheduler.advance(10);
    await settleMicrotasks();
    expect((slow.error as RequestTimeoutError).phase).toBe('running');
    expect(loader.stats()).toMatchObject({ abandonedBatches: 1 });
    const fast = outcome(loader.load(2, { timeoutMs: 10 }));
    closeWindows();
    expect(scheduler.scheduledCount).toBe(1);
    answer(1);
    await settleMicrotasks();
    expect(fast.value).toBe(20);
    expect(scheduler.scheduledCount).toBe(0);
  });

  it('Infinity means no deadline', async () => {
    const scheduler = new ManualScheduler();
    const { loader } = heldLoader({ scheduler });
    void loader.load(1, { timeoutMs: Infinity });
    expect(scheduler.scheduledCount).toBe(0);
  });
});

describe('rx-batcher/dataloader: per-load options are checked, and a second argument that is not an object is ignored', () => {
  const loader = new DataLoader<number, number>(async (keys) => keys, { name: 'ids' });

  it('the index Array.prototype.map passes is ignored, as DataLoader ignores it', async () => {
    await expect(Promise.all([1, 2].map(loader.load, loader))).resolves.toEqual([1, 2]);
  });

  it('a bad signal or timeoutMs throws, naming the field and the value', () => {
    expect(() => loader.load(1, { signal: 'stop' as unknown as AbortSignal })).toThrow(
      new TypeError('[rx-batcher] "ids": load(key, options): `signal` must be an AbortSignal, got "stop" (string).'),
    );
    expect(() => loader.load(1, { timeoutMs: 0 })).toThrow(
      new RangeError('[rx-batcher] "ids": load(key, options): `timeoutMs` must be a number of milliseconds > 0 (or Infinity for none), got 0 (number).'),
    );
    expect(() => loader.load(1, { timeoutMs: '5' as unknown as number })).toThrow(TypeError);
    expect(() => loader.load(1, { timeout: 5 } as unknown as DataLoader.LoadOptions)).toThrow(
      new TypeError('[rx-batcher] "ids": load(key, options): unknown option `timeout`; did you mean `timeoutMs`?'),
    );
  });
});

describe('rx-batcher/dataloader: maxConcurrentBatches, with late sealing', () => {
  it('keys that arrive while every slot is busy wait, and the next batch takes up to maxBatchSize of the oldest', async () => {
    const { loader, closeWindows, keysOf, answer } = heldLoader({ maxConcurrentBatches: 1, maxBatchSize: 3 });
    void loader.load(1);
    void loader.load(2);
    closeWindows();
    void loader.load(3);
    closeWindows(); // DataLoader would send [3] now, beside the running batch
    for (const key of [4, 5, 6]) void loader.load(key);
    closeWindows();
    expect(keysOf()).toEqual([[1, 2]]);
    answer(0);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[1, 2], [3, 4, 5]]);
    answer(1);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[1, 2], [3, 4, 5], [6]]);
  });

  it('by default batches run side by side, as in DataLoader', () => {
    const { loader, closeWindows, keysOf } = heldLoader();
    void loader.load(1);
    closeWindows();
    void loader.load(2);
    closeWindows();
    expect(keysOf()).toEqual([[1], [2]]);
  });
});

describe('rx-batcher/dataloader: maxQueueSize', () => {
  it('beyond it load() rejects at once with QueueFullError, and the key is not cached', async () => {
    const { loader, closeWindows, keysOf, answer } = heldLoader({ name: 'users', maxQueueSize: 2 });
    void loader.load(1);
    void loader.load(2);
    const refused = outcome(loader.load(3));
    await settleMicrotasks();
    expect(refused.error).toBeInstanceOf(QueueFullError);
    expect((refused.error as Error).message).toBe(
      '[rx-batcher] "users": the queue is full (maxQueueSize 2 requests waiting), so this request was refused. Retry later, shed load upstream, add capacity, or raise maxQueueSize.',
    );
    closeWindows();
    answer(0);
    await settleMicrotasks();
    const again = outcome(loader.load(3));
    closeWindows();
    answer(1);
    await settleMicrotasks();
    expect(keysOf()).toEqual([[1, 2], [3]]);
    expect(again.value).toBe(30);
  });
});

describe('rx-batcher/dataloader: stats() and results$', () => {
  it('stats count keys and batches (cache hits never reach the engine); results$ has one settlement per key', async () => {
    const { loader, closeWindows, answer } = heldLoader({ name: 'users', maxBatchSize: 2 });
    const settlements: Settlement<number, number>[] = [];
    loader.results$.subscribe((s) => settlements.push(s));
    const loads = [1, 2, 3, 1].map((key) => loader.load(key));
    closeWindows();
    expect(loader.stats()).toMatchObject({ name: 'users', submitted: 3, inFlight: 3, queued: 0, batchesInFlight: 2, batches: 2 });
    answer(0);
    answer(1);
    await expect(Promise.all(loads)).resolves.toEqual([10, 20, 30, 10]);
    expect(loader.stats()).toMatchObject({ succeeded: 3, batchSizes: { 1: 1, 2: 1 }, meanBatchSize: 1.5 });
    expect(settlements.map((s) => [s.status, s.input])).toEqual([
      ['fulfilled', 1],
      ['fulfilled', 2],
      ['fulfilled', 3],
    ]);
  });
});

describe('rx-batcher/dataloader: rx-batcher options are checked by rx-batcher, DataLoader\'s by DataLoader\'s rules', () => {
  it('a bad maxConcurrentBatches or maxQueueSize throws naming the option, the value and the loader', () => {
    expect(() => new DataLoader(async (keys) => keys, { name: 'users', maxConcurrentBatches: 0 })).toThrow(
      new RangeError('[rx-batcher] "users": `maxConcurrentBatches` must be an integer ≥ 1 or Infinity, got 0 (number).'),
    );
    expect(() => new DataLoader(async (keys) => keys, { maxQueueSize: -1 })).toThrow(
      new RangeError('[rx-batcher] "DataLoader": `maxQueueSize` must be an integer ≥ 1 or Infinity, got -1 (number).'),
    );
  });

  it('unknown options are ignored, as DataLoader ignores them', () => {
    expect(() => new DataLoader(async (keys) => keys, { maxBatchSiz: 3 } as DataLoader.Options<unknown, unknown>)).not.toThrow();
  });

  it('null options throw as they do in DataLoader 2.2.3', () => {
    expect(() => new DataLoader(async (keys) => keys, null as unknown as undefined)).toThrow(new TypeError('maxBatchSize must be a positive number: null'));
  });
});
