import { firstValueFrom, Observable, of, Subject, throwError, toArray, EMPTY } from 'rxjs';
import {
  Batcher,
  BatcherStoppedError,
  BatchResultError,
  QueueFullError,
  RequestTimeoutError,
  type BatchContext,
  type Settlement,
} from '../lib';
import { controlledRunBatch, outcome, recordingRunBatch, settleMicrotasks } from './helpers/recording';

const double = (xs: readonly number[]) => xs.map((x) => x * 2);

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

describe('Batcher: batching', () => {
  it('runs a single request as a batch of one', async () => {
    const [runBatch, calls] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 10 });
    await expect(batcher.run(21)).resolves.toBe(42);
    expect(calls).toEqual([[21]]);
  });

  it('puts requests issued in the same synchronous run of code into one batch when maxDelayMs is 0', async () => {
    const [runBatch, calls] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 10 });
    const results = await Promise.all([1, 2, 3, 4].map((x) => batcher.run(x)));
    expect(results).toEqual([2, 4, 6, 8]);
    expect(calls).toEqual([[1, 2, 3, 4]]);
  });

  it('splits at maxBatchSize and hands every caller its own result (caikit: many concurrent requests)', async () => {
    const [runBatch, calls] = recordingRunBatch<string, string>(async (xs) => xs.map((x) => `echo ${x}`));
    const batcher = new Batcher({ runBatch, maxBatchSize: 10, maxConcurrentBatches: 2 });
    const names = Array.from({ length: 20 }, (_, i) => String(i));
    const results = await Promise.all(names.map((n) => batcher.run(n)));
    expect(results).toEqual(names.map((n) => `echo ${n}`));
    expect(calls).toHaveLength(2);
    expect(calls.some((batch) => batch.length > 1)).toBe(true);
  });

  it('dispatches a batch the moment it is full, without waiting for maxDelayMs', () => {
    const [runBatch, calls, contexts] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 3, maxDelayMs: 1000 });
    void batcher.run(1);
    void batcher.run(2);
    expect(calls).toEqual([]);
    void batcher.run(3);
    expect(calls).toEqual([[1, 2, 3]]);
    expect(contexts[0].reason).toBe('full');
  });

  it('dispatches maxDelayMs after the first request of the batch, not after the last (unlike caikit)', async () => {
    const [runBatch, calls, contexts] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 100, maxDelayMs: 10 });
    const results: Promise<number>[] = [];
    for (let t = 0; t < 12; t += 3) {
      results.push(batcher.run(t));
      await jest.advanceTimersByTimeAsync(3);
    }
    // arrivals at 0, 3, 6, 9: the window opened at 0 closes at 10, though requests kept coming
    expect(calls).toEqual([[0, 3, 6, 9]]);
    expect(contexts[0].reason).toBe('delay');
    await expect(Promise.all(results)).resolves.toEqual([0, 6, 12, 18]);
  });

  it('does not dispatch before maxDelayMs has passed (caikit: collect delay)', async () => {
    const [runBatch, calls] = recordingRunBatch<string, string>((xs) => xs.map((x) => x.toUpperCase()));
    const batcher = new Batcher({ runBatch, maxBatchSize: 5, maxDelayMs: 10 });
    const bob = batcher.run('bob');
    await jest.advanceTimersByTimeAsync(1);
    const jim = batcher.run('jim');
    await jest.advanceTimersByTimeAsync(8);
    expect(calls).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([['bob', 'jim']]);
    await expect(Promise.all([bob, jim])).resolves.toEqual(['BOB', 'JIM']);
  });

  it('seals late: requests that arrive while the model is busy wait for a free slot, then go out as full batches', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 4, maxDelayMs: 2 });
    const all: Promise<number>[] = [batcher.run(0)];
    await jest.advanceTimersByTimeAsync(2);
    expect(batches.map((b) => b.inputs)).toEqual([[0]]);
    // the model is busy for 20 ms while 10 requests trickle in, one per 2 ms
    for (let i = 1; i <= 10; i++) {
      all.push(batcher.run(i));
      await jest.advanceTimersByTimeAsync(2);
    }
    expect(batches).toHaveLength(1); // no train of tiny timer-cut batches
    batches[0].done.resolve([0]);
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([[0], [1, 2, 3, 4]]);
    expect(batches[1].ctx.reason).toBe('full');
    batches[1].done.resolve([1, 2, 3, 4]);
    await settleMicrotasks();
    expect(batches[2].inputs).toEqual([5, 6, 7, 8]);
    batches[2].done.resolve([5, 6, 7, 8]);
    await settleMicrotasks();
    // the rest is older than maxDelayMs already: it goes at once, as a smaller batch
    expect(batches[3].inputs).toEqual([9, 10]);
    expect(batches[3].ctx.reason).toBe('delay');
    batches[3].done.resolve([9, 10]);
    await expect(Promise.all(all)).resolves.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('runs up to maxConcurrentBatches batches at once', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 2, maxConcurrentBatches: 2 });
    const all = [1, 2, 3, 4, 5, 6].map((x) => batcher.run(x));
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([[1, 2], [3, 4]]);
    expect(batcher.stats()).toMatchObject({ batchesInFlight: 2, inFlight: 4, queued: 2 });
    batches[1].done.resolve([3, 4]);
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([[1, 2], [3, 4], [5, 6]]);
    batches[0].done.resolve([1, 2]);
    batches[2].done.resolve([5, 6]);
    await expect(Promise.all(all)).resolves.toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('keeps FIFO order within a partition and never mixes partitions', async () => {
    const [runBatch, calls, contexts] = recordingRunBatch<{ model: string; x: number }, number>((xs) => xs.map((i) => i.x));
    const batcher = new Batcher({ runBatch, maxBatchSize: 3, partitionBy: (i) => i.model });
    const inputs = [
      { model: 'a', x: 1 }, { model: 'b', x: 2 }, { model: 'a', x: 3 },
      { model: 'b', x: 4 }, { model: 'a', x: 5 }, { model: 'a', x: 6 },
    ];
    const results = await Promise.all(inputs.map((i) => batcher.run(i)));
    expect(results).toEqual([1, 2, 3, 4, 5, 6]);
    expect(calls.map((c) => c.map((i) => i.x))).toEqual([[1, 3, 5], [2, 4], [6]]);
    expect(contexts.map((c) => c.partition)).toEqual(['a', 'b', 'a']);
  });

  it('hands runBatch a context with batchId, size, reason and partition', async () => {
    const [runBatch, , contexts] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 2 });
    await Promise.all([1, 2, 3].map((x) => batcher.run(x)));
    expect(contexts.map((c) => [c.batchId, c.size, c.reason, c.partition])).toEqual([
      [1, 2, 'full', undefined],
      [2, 1, 'delay', undefined],
    ]);
    expect(contexts[0].signal).toBeInstanceOf(AbortSignal);
    expect(contexts[0].signal.aborted).toBe(false);
  });

  it('flush() dispatches what is queued now', async () => {
    const [runBatch, calls, contexts] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 10, maxDelayMs: 1000 });
    const a = batcher.run(1);
    const b = batcher.run(2);
    batcher.flush();
    expect(calls).toEqual([[1, 2]]);
    expect(contexts[0].reason).toBe('flush');
    await expect(Promise.all([a, b])).resolves.toEqual([2, 4]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('accepts results as a value, a Promise, an Observable (first emission) or a typed array', async () => {
    const values = new Batcher<number, number>({ maxBatchSize: 2, runBatch: double });
    const promised = new Batcher<number, number>({ maxBatchSize: 2, runBatch: async (xs) => double(xs) });
    const observed = new Batcher<number, number>({
      maxBatchSize: 2,
      runBatch: (xs) => new Observable<number[]>((s) => { s.next(double(xs)); s.next([0, 0]); }),
    });
    const typed = new Batcher<number, number>({ maxBatchSize: 2, runBatch: (xs) => Float32Array.from(double(xs)) });
    for (const b of [values, promised, observed, typed]) {
      await expect(Promise.all([b.run(1), b.run(2)])).resolves.toEqual([2, 4]);
    }
  });

  it('does not keep the process alive or wake up while idle: no timers once the work is done', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 4, maxDelayMs: 5, timeoutMs: 1000, runBatch: double });
    expect(jest.getTimerCount()).toBe(0);
    const p = batcher.run(1);
    expect(jest.getTimerCount()).toBeGreaterThan(0);
    await jest.advanceTimersByTimeAsync(5);
    await expect(p).resolves.toBe(2);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(batcher.stats().batches).toBe(1); // no empty batches while idle
  });
});

describe('Batcher: errors', () => {
  it('fails only the caller whose slot holds an Error (caikit: a bad request next to good ones)', async () => {
    const batcher = new Batcher<number, number>({
      maxBatchSize: 3,
      runBatch: (xs) => xs.map((x) => (x < 0 ? new RangeError(`negative: ${x}`) : x)),
    });
    const [a, b, c] = await Promise.allSettled([batcher.run(1), batcher.run(-2), batcher.run(3)]);
    expect(a).toEqual({ status: 'fulfilled', value: 1 });
    expect(b).toMatchObject({ status: 'rejected', reason: new RangeError('negative: -2') });
    expect(c).toEqual({ status: 'fulfilled', value: 3 });
  });

  it.each([
    ['throws', () => { throw new Error('model crashed'); }],
    ['rejects', () => Promise.reject(new Error('model crashed'))],
    ['errors (Observable)', () => throwError(() => new Error('model crashed'))],
  ])('gives every caller of the batch the same error when runBatch %s, and keeps serving', async (_, fail) => {
    let calls = 0;
    const batcher = new Batcher<number, number>({
      maxBatchSize: 2,
      runBatch: (xs) => (++calls === 1 ? (fail() as never) : double(xs)),
    });
    const results = await Promise.allSettled([batcher.run(1), batcher.run(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const [r1, r2] = results as PromiseRejectedResult[];
    expect(r1.reason).toBe(r2.reason);
    expect((r1.reason as Error).message).toBe('model crashed');
    await expect(batcher.run(5)).resolves.toBe(10);
    expect(batcher.stats()).toMatchObject({ failed: 2, succeeded: 1, failedBatches: 1 });
  });

  it('rejects the whole batch with BatchResultError when runBatch returns the wrong number of results', async () => {
    const batcher = new Batcher<number, number>({ name: 'ranker', maxBatchSize: 3, runBatch: (xs) => xs.slice(1) });
    const results = await Promise.allSettled([batcher.run(1), batcher.run(2), batcher.run(3)]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const error = (r as PromiseRejectedResult).reason as BatchResultError;
      expect(error).toBeInstanceOf(BatchResultError);
      expect(error).toMatchObject({ batcher: 'ranker', expected: 3, actual: 2 });
      expect(error.message).toBe(
        '[rx-batcher] "ranker": runBatch must return an array with one result per input, but returned 2 results for 3 inputs. Results are matched to callers by position.',
      );
    }
  });

  it.each([
    ['undefined', () => undefined, 'undefined'],
    ['an object without a length', () => ({ size: 1 }), 'an object (object)'],
    ['a string', () => 'x', '"x" (string)'],
    ['a Promise of null', () => Promise.resolve(null), 'null'],
  ])('rejects the batch with BatchResultError when runBatch returns %s', async (_, bad, shown) => {
    const batcher = new Batcher<number, number>({ name: 'm', maxBatchSize: 1, runBatch: bad as never });
    await expect(batcher.run(1)).rejects.toThrow(
      `[rx-batcher] "m": runBatch must return an array with one result per input (1 here), as a value, a Promise or an Observable, but it returned ${shown}.`,
    );
  });

  it('rejects the batch with BatchResultError when runBatch returns an Observable that completes empty', async () => {
    const batcher = new Batcher<number, number>({ name: 'm', maxBatchSize: 1, runBatch: () => EMPTY });
    const error = await batcher.run(1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchResultError);
    expect((error as Error).message).toBe(
      '[rx-batcher] "m": runBatch must return one result per input (1 here), but the Observable it returned completed without emitting.',
    );
  });

  it('never throws synchronously from run(): bad call options become rejections', async () => {
    const batcher = new Batcher<number, number>({ name: 'm', maxBatchSize: 1, runBatch: double });
    await expect(batcher.run(1, { timeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(batcher.run(1, { timeoutMs: '5' as never })).rejects.toThrow(
      '[rx-batcher] "m": run(input, options): `timeoutMs` must be a number of milliseconds > 0 (or Infinity for none), got "5" (string).',
    );
    await expect(batcher.run(1, { signal: {} as never })).rejects.toThrow(
      '[rx-batcher] "m": run(input, options): `signal` must be an AbortSignal, got an object (object).',
    );
    await expect(batcher.run(1, 7 as never)).rejects.toThrow(TypeError);
    expect(batcher.stats()).toMatchObject({ submitted: 4, rejected: 4 });
  });

  it('rejects a request whose partitionBy throws or returns a non-string, alone', async () => {
    const batcher = new Batcher<number, number>({
      name: 'p',
      maxBatchSize: 4,
      runBatch: double,
      partitionBy: (x) => {
        if (x === 0) throw new Error('no key for 0');
        return (x === 1 ? 1 : 'k') as string;
      },
    });
    const [zero, one, two] = await Promise.allSettled([batcher.run(0), batcher.run(1), batcher.run(2)]);
    expect(zero).toMatchObject({ status: 'rejected', reason: new Error('no key for 0') });
    expect((one as PromiseRejectedResult).reason).toEqual(
      new TypeError('[rx-batcher] "p": `partitionBy` must return a string, but returned 1 (number).'),
    );
    expect(two).toEqual({ status: 'fulfilled', value: 4 });
  });
});

describe('Batcher: defaults (caikit: ragged inputs)', () => {
  interface Greeting {
    name: string;
    last?: string;
    excited?: boolean;
    repeat?: number;
  }

  it('fills omitted keys, including falsy defaults, without mutating the caller\'s object', async () => {
    const [runBatch, calls] = recordingRunBatch<Greeting, string>((xs) =>
      xs.map((g) => `${g.name} ${g.last}${g.excited ? '!' : ''} x${g.repeat}`),
    );
    const batcher = new Batcher<Greeting, string>({
      maxBatchSize: 5,
      runBatch,
      defaults: { last: 'Bit', excited: false, repeat: 0 },
    });
    const bob: Greeting = { name: 'Bob' };
    const jim: Greeting = { name: 'Jim', last: 'Bo', excited: true, repeat: undefined };
    const results = await Promise.all([batcher.run(bob), batcher.run(jim)]);
    expect(results).toEqual(['Bob Bit x0', 'Jim Bo! x0']);
    expect(calls[0]).toEqual([
      { name: 'Bob', last: 'Bit', excited: false, repeat: 0 },
      { name: 'Jim', last: 'Bo', excited: true, repeat: 0 },
    ]);
    expect(bob).toEqual({ name: 'Bob' });
    expect(jim.repeat).toBeUndefined();
  });

  it('lets requests with different optional fields share a batch (caikit: different kwargs)', async () => {
    const [runBatch, calls] = recordingRunBatch<Greeting, string>((xs) => xs.map((g) => `${g.name} ${g.last}`));
    const batcher = new Batcher<Greeting, string>({ maxBatchSize: 5, runBatch, defaults: { last: 'Bit' } });
    const inputs = Array.from({ length: 10 }, (_, i): Greeting => (i % 2 ? { name: 'Bob' } : { name: 'Jim', last: 'Bo' }));
    const results = await Promise.all(inputs.map((i) => batcher.run(i)));
    expect(results).toEqual(inputs.map((_, i) => (i % 2 ? 'Bob Bit' : 'Jim Bo')));
    expect(calls).toHaveLength(2);
  });

  it('rejects a non-object input alone when defaults are set', async () => {
    const batcher = new Batcher<Greeting, string>({ name: 'g', maxBatchSize: 5, runBatch: (xs) => xs.map((g) => g.name), defaults: { last: 'Bit' } });
    const [bad, good] = await Promise.allSettled([batcher.run(42 as never), batcher.run({ name: 'Ann' })]);
    expect((bad as PromiseRejectedResult).reason).toEqual(
      new TypeError('[rx-batcher] "g": run(input): `defaults` are set, so every input must be an object, got 42 (number).'),
    );
    expect(good).toEqual({ status: 'fulfilled', value: 'Ann' });
  });
});

describe('Batcher: backpressure, deadlines and cancellation', () => {
  it('rejects at once with QueueFullError beyond maxQueueSize; running requests do not count', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ name: 'q', runBatch, maxBatchSize: 2, maxQueueSize: 3 });
    const running = [batcher.run(1), batcher.run(2)]; // full: dispatched at once
    const queued = [batcher.run(3), batcher.run(4), batcher.run(5)];
    const refused = outcome(batcher.run(6));
    await settleMicrotasks();
    expect(refused.error).toBeInstanceOf(QueueFullError);
    expect(refused.error).toMatchObject({ batcher: 'q', option: 'maxQueueSize', limit: 3 });
    expect((refused.error as Error).message).toBe(
      '[rx-batcher] "q": the queue is full (maxQueueSize 3 requests waiting), so this request was refused. Retry later, shed load upstream, add capacity, or raise maxQueueSize.',
    );
    batches[0].done.resolve([1, 2]);
    await settleMicrotasks();
    batches[1].done.resolve([3, 4]);
    await settleMicrotasks();
    batches[2].done.resolve([5]);
    await expect(Promise.all([...running, ...queued])).resolves.toEqual([1, 2, 3, 4, 5]);
  });

  it('times out a queued request, which then never reaches runBatch', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ name: 't', runBatch, maxBatchSize: 1, timeoutMs: 50 });
    const first = batcher.run(1, { timeoutMs: 1000 });
    const second = outcome(batcher.run(2));
    await jest.advanceTimersByTimeAsync(49);
    expect(second.settled).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(second.error).toBeInstanceOf(RequestTimeoutError);
    expect(second.error).toMatchObject({ timeoutMs: 50, phase: 'queued' });
    expect((second.error as Error).message).toBe(
      '[rx-batcher] "t": the request timed out after 50 ms while waiting in the queue. Raise timeoutMs, lower maxDelayMs, or add capacity (maxConcurrentBatches).',
    );
    batches[0].done.resolve([1]);
    await expect(first).resolves.toBe(1);
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([[1]]);
  });

  it('rejects a request that times out while its batch runs promptly, and drops its late result', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 2 });
    const slow = outcome(batcher.run(1, { timeoutMs: 100 }));
    const patient = batcher.run(2);
    await jest.advanceTimersByTimeAsync(100);
    expect(slow.error).toMatchObject({ name: 'RequestTimeoutError', phase: 'running', timeoutMs: 100 });
    expect(batches[0].ctx.signal.aborted).toBe(false); // someone still waits for this batch
    batches[0].done.resolve([10, 20]);
    await expect(patient).resolves.toBe(20);
    expect(slow.value).toBeUndefined();
    expect(batcher.stats()).toMatchObject({ timedOut: 1, succeeded: 1, inFlight: 0 });
  });

  it('removes an aborted queued request (it never reaches runBatch) and rejects with signal.reason', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 1 });
    const first = batcher.run(1);
    const controller = new AbortController();
    const second = outcome(batcher.run(2, { signal: controller.signal }));
    const third = batcher.run(3);
    const reason = new Error('client went away');
    controller.abort(reason);
    await settleMicrotasks();
    expect(second.error).toBe(reason);
    batches[0].done.resolve([1]);
    await settleMicrotasks();
    batches[1].done.resolve([3]);
    await expect(Promise.all([first, third])).resolves.toEqual([1, 3]);
    expect(batches.map((b) => b.inputs)).toEqual([[1], [3]]);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const [runBatch, calls] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 1 });
    const signal = AbortSignal.abort(new Error('too late'));
    await expect(batcher.run(1, { signal })).rejects.toThrow('too late');
    expect(calls).toEqual([]);
    expect(batcher.stats()).toMatchObject({ cancelled: 1, submitted: 1 });
  });

  it('aborts a running batch\'s signal only when every caller of it has gone', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 2 });
    const a = new AbortController();
    const b = new AbortController();
    const pa = outcome(batcher.run(1, { signal: a.signal }));
    const pb = outcome(batcher.run(2, { signal: b.signal }));
    await settleMicrotasks();
    const { signal } = batches[0].ctx;
    a.abort();
    expect(signal.aborted).toBe(false);
    b.abort();
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).name).toBe('AbortError');
    await settleMicrotasks();
    expect(pa.error).toMatchObject({ name: 'AbortError' });
    expect(pb.error).toMatchObject({ name: 'AbortError' });
    // the model ignores the signal and answers later: nothing happens twice
    batches[0].done.resolve([1, 2]);
    await settleMicrotasks();
    expect(batcher.stats()).toMatchObject({ cancelled: 2, succeeded: 0, batchesInFlight: 0 });
  });

  it('cancels an Observable runBatch and frees its slot when every caller has gone', async () => {
    const subject = new Subject<number[]>();
    let unsubscribed = 0;
    const batcher = new Batcher<number, number>({
      maxBatchSize: 1,
      runBatch: (xs) => (xs[0] === 1 ? new Observable<number[]>((s) => { const sub = subject.subscribe(s); return () => { unsubscribed++; sub.unsubscribe(); }; }) : of(double(xs))),
    });
    const controller = new AbortController();
    const first = outcome(batcher.run(1, { signal: controller.signal }));
    const second = batcher.run(2);
    controller.abort();
    await expect(second).resolves.toBe(4);
    expect(unsubscribed).toBe(1);
    expect(first.error).toMatchObject({ name: 'AbortError' });
  });

  it('run$() is cold, and unsubscribing removes a queued request', async () => {
    const [runBatch, calls] = recordingRunBatch<number, number>(double);
    const batcher = new Batcher({ runBatch, maxBatchSize: 10, maxDelayMs: 10 });
    const cold = batcher.run$(1);
    expect(batcher.stats().submitted).toBe(0);
    const kept = firstValueFrom(batcher.run$(2));
    const dropped = cold.subscribe();
    dropped.unsubscribe();
    await jest.advanceTimersByTimeAsync(10);
    await expect(kept).resolves.toBe(4);
    expect(calls).toEqual([[2]]);
    expect(batcher.stats()).toMatchObject({ submitted: 2, cancelled: 1, succeeded: 1 });
  });
});

describe('Batcher: stop', () => {
  it('lets a running batch finish and deliver, and rejects queued requests (caikit: stop with a batch in flight)', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ name: 's', runBatch, maxBatchSize: 2 });
    const running = [batcher.run(1), batcher.run(2)];
    const queued = [outcome(batcher.run(3)), outcome(batcher.run(4))];
    await settleMicrotasks();
    const stopped = outcome(batcher.stop());
    await settleMicrotasks();
    expect(stopped.settled).toBe(false); // a batch is still running
    expect(batches[0].ctx.signal.aborted).toBe(true);
    expect(batches[0].ctx.signal.reason).toBeInstanceOf(BatcherStoppedError);
    for (const q of queued) {
      expect(q.error).toBeInstanceOf(BatcherStoppedError);
      expect((q.error as BatcherStoppedError).when).toBe('queued');
    }
    batches[0].done.resolve([1, 2]);
    await expect(Promise.all(running)).resolves.toEqual([1, 2]);
    await settleMicrotasks();
    expect(stopped.settled).toBe(true);
    expect(batches).toHaveLength(1);
    expect(batcher.stats()).toMatchObject({ stopped: true, rejected: 2, succeeded: 2, queued: 0, inFlight: 0 });
  });

  it('cannot be restarted: run() after stop() rejects with BatcherStoppedError (caikit: no restart)', async () => {
    const batcher = new Batcher<number, number>({ name: 'x', runBatch: double, maxBatchSize: 2 });
    await expect(batcher.run(1)).resolves.toBe(2);
    await batcher.stop();
    let thrown: unknown;
    let p: Promise<number> | undefined;
    try {
      p = batcher.run(2);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeUndefined();
    await expect(p).rejects.toThrow(
      '[rx-batcher] "x": the batcher is stopped: run() was called after stop(). Stopping is irreversible: create a new Batcher to serve more requests.',
    );
    await expect(firstValueFrom(batcher.run$(3))).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it('drains: with { drain: true } everything queued is dispatched and finished first', async () => {
    const [runBatch, calls, contexts] = recordingRunBatch<number, number>(async (xs) => double(xs));
    const batcher = new Batcher({ runBatch, maxBatchSize: 2, maxDelayMs: 1000 });
    const all = [1, 2, 3, 4, 5].map((x) => batcher.run(x));
    const stopped = batcher.stop({ drain: true });
    const after = outcome(batcher.run(7));
    await stopped;
    await expect(Promise.all(all)).resolves.toEqual([2, 4, 6, 8, 10]);
    expect(calls).toEqual([[1, 2], [3, 4], [5]]);
    expect(contexts.map((c) => c.reason)).toEqual(['full', 'full', 'drain']);
    await settleMicrotasks();
    expect(after.error).toBeInstanceOf(BatcherStoppedError);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('is harmless to call twice, and a plain stop() cuts a drain short', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 1 });
    const first = batcher.run(1);
    const second = outcome(batcher.run(2));
    const draining = batcher.stop({ drain: true });
    const stopping = batcher.stop();
    await settleMicrotasks();
    expect(second.error).toBeInstanceOf(BatcherStoppedError);
    batches[0].done.resolve([1]);
    await expect(first).resolves.toBe(1);
    await Promise.all([draining, stopping]);
    await expect(batcher.stop()).resolves.toBeUndefined();
  });

  it('rejects bad stop() options without stopping', async () => {
    const batcher = new Batcher<number, number>({ name: 'b', runBatch: double, maxBatchSize: 1 });
    await expect(batcher.stop({ drain: 'yes' as never })).rejects.toThrow(
      '[rx-batcher] "b": stop(options): `drain` must be a boolean, got "yes" (string).',
    );
    await expect(batcher.run(1)).resolves.toBe(2);
  });

  it('stops at the end of an `await using` scope', async () => {
    let outer: Batcher<number, number> | undefined;
    {
      await using batcher = new Batcher<number, number>({ runBatch: double, maxBatchSize: 1 });
      outer = batcher;
      await expect(batcher.run(2)).resolves.toBe(4);
    }
    expect(outer.stats().stopped).toBe(true);
  });

  it('completes results$ and stats$ when stopped', async () => {
    const batcher = new Batcher<number, number>({ runBatch: double, maxBatchSize: 1 });
    const results = firstValueFrom(batcher.results$.pipe(toArray()));
    const stats = firstValueFrom(batcher.stats$.pipe(toArray()));
    await batcher.run(1);
    await batcher.stop();
    await expect(results).resolves.toHaveLength(1);
    const snapshots = await stats;
    expect(snapshots[snapshots.length - 1].stopped).toBe(true);
  });
});

describe('Batcher: results$ and stats', () => {
  it('emits one settlement per request, routed by id, shaped like Promise.allSettled entries', async () => {
    const batcher = new Batcher<number, number>({
      maxBatchSize: 3,
      runBatch: (xs) => xs.map((x) => (x === 2 ? new Error('two') : x * 10)),
    });
    const seen: Settlement<number, number>[] = [];
    batcher.results$.subscribe((s) => seen.push(s));
    await Promise.allSettled([batcher.run(1), batcher.run(2), batcher.run(3)]);
    expect(seen).toEqual([
      { status: 'fulfilled', value: 10, id: 1, input: 1 },
      { status: 'rejected', reason: new Error('two'), id: 2, input: 2 },
      { status: 'fulfilled', value: 30, id: 3, input: 3 },
    ]);
  });

  it('keeps counts that add up, a batch-size histogram and dispatch reasons, in frozen snapshots', async () => {
    const batcher = new Batcher<number, number>({ name: 'counted', maxBatchSize: 2, runBatch: double });
    const before = batcher.stats();
    await Promise.all([1, 2, 3].map((x) => batcher.run(x)));
    const after = batcher.stats();
    expect(before.submitted).toBe(0);
    expect(after).toMatchObject({
      name: 'counted', submitted: 3, succeeded: 3, batches: 2, meanBatchSize: 1.5,
      batchSizes: { 1: 1, 2: 1 }, dispatchReasons: { full: 1, delay: 1, flush: 0, drain: 0 },
    });
    expect(after.lastBatch).toMatchObject({ size: 1, reason: 'delay', outcome: 'succeeded' });
    expect(Object.isFrozen(after)).toBe(true);
    expect(Object.isFrozen(after.batchSizes)).toBe(true);
    expect(batcher.stats()).toBe(after); // nothing changed: the same snapshot
  });

  it('emits stats$ snapshots as batches are dispatched and finish', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: async (xs) => double(xs) });
    const snapshots: { batchesInFlight: number; succeeded: number }[] = [];
    batcher.stats$.subscribe((s) => snapshots.push({ batchesInFlight: s.batchesInFlight, succeeded: s.succeeded }));
    await Promise.all([batcher.run(1), batcher.run(2)]);
    expect(snapshots).toEqual([
      { batchesInFlight: 0, succeeded: 0 },
      { batchesInFlight: 1, succeeded: 0 },
      { batchesInFlight: 0, succeeded: 2 },
    ]);
  });
});

describe('Batcher: no unhandled rejections of its own', () => {
  it('swallows nothing and leaks nothing when batches fail after their callers are gone', async () => {
    jest.useRealTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const batcher = new Batcher<number, number>({
        maxBatchSize: 2,
        runBatch: (_xs: readonly number[], ctx: BatchContext) =>
          new Promise<number[]>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      });
      const controller = new AbortController();
      const calls = [batcher.run(1, { signal: controller.signal }), batcher.run(2, { signal: controller.signal })];
      controller.abort();
      await Promise.allSettled(calls);
      const more = [batcher.run(3), batcher.run(4)];
      await batcher.stop();
      await Promise.allSettled(more);
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('Batcher: deadline timer precision', () => {
  it('expires a request when its deadline timer fires, even if the clock reads a little earlier', async () => {
    const { runBatch, batches } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 1, timeoutMs: 2 });
    const late = outcome(batcher.run(1));
    // The timer fires on time, but Date.now() lags by a millisecond (as a Node timer may see it).
    const realNow = Date.now;
    const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 1);
    try {
      await jest.advanceTimersByTimeAsync(2);
    } finally {
      spy.mockRestore();
    }
    batches[0].done.resolve([10]); // the model answers after the deadline
    await settleMicrotasks();
    expect(late.error).toBeInstanceOf(RequestTimeoutError);
  });
});

describe('Batcher: the batcher timeout and per-call options', () => {
  it('applies the batcher\'s timeoutMs to a call that passes only a signal', async () => {
    const { runBatch } = controlledRunBatch<number, number>();
    const batcher = new Batcher({ runBatch, maxBatchSize: 1, timeoutMs: 50 });
    const call = outcome(batcher.run(1, { signal: new AbortController().signal }));
    await jest.advanceTimersByTimeAsync(50);
    expect(call.error).toMatchObject({ name: 'RequestTimeoutError', timeoutMs: 50 });
  });
});
