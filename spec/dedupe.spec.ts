/**
 * `dedupeBy` (issue 10): identical inputs waiting or running share one slot and one model
 * result; each caller still settles on its own. On a manual clock, with batches held until the
 * test answers them (an Observable per batch, so answering is synchronous).
 */
import { firstValueFrom, from, lastValueFrom, Subject, toArray, VirtualTimeScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  Batcher,
  BatcherStoppedError,
  batchMap,
  batchMapSettled,
  BatchResultError,
  RequestTimeoutError,
  type BatchContext,
  type BatcherOptions,
  type BatcherStats,
  type Settlement,
} from '../lib';
import { BatchEngine } from '../lib/core/batchEngine';
import { EngineRequest } from '../lib/core/request';
import { BATCHER_FACE, normalizeOptions } from '../lib/options/normalizeOptions';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';
import { ManualScheduler } from './helpers/manualScheduler';
import { outcome, settleMicrotasks } from './helpers/recording';
import { advanceVirtualClock } from './helpers/virtualClock';

interface HeldBatch {
  inputs: string[];
  ctx: BatchContext;
  result: Subject<unknown[]>;
}

/** A batcher deduping by the input itself, whose batches wait until the test answers them. */
function held(options: Partial<BatcherOptions<string, string>> = {}) {
  const scheduler = new ManualScheduler();
  const batches: HeldBatch[] = [];
  const batcher = new Batcher<string, string>({
    name: 'dd',
    maxBatchSize: 8,
    maxDelayMs: 5,
    scheduler,
    dedupeBy: (s) => s,
    ...options,
    runBatch: (inputs, ctx) => {
      const result = new Subject<unknown[]>();
      batches.push({ inputs: [...inputs], ctx, result });
      return result as Subject<string[]>;
    },
  });
  const settlements: Settlement<string, string>[] = [];
  batcher.results$.subscribe((s) => settlements.push(s));
  /** Answers batch `i`: each input upper-cased, or what `map` says. */
  const answer = (i: number, map: (x: string) => unknown = (x) => x.toUpperCase()): void => batches[i].result.next(batches[i].inputs.map(map));
  return { scheduler, batches, batcher, answer, settlements };
}

function addsUp(s: BatcherStats): void {
  expect(s.submitted).toBe(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected);
}

describe('dedupeBy: identical inputs share one slot', () => {
  it('makes one model call for identical inputs waiting together; every caller gets the one result', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const calls = ['a', 'b', 'a', 'a', 'c'].map((x) => outcome(batcher.run(x)));
    expect(batcher.stats()).toMatchObject({ submitted: 5, queued: 5, merged: 2 });
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a', 'b', 'c']]);
    expect(batches[0].ctx.size).toBe(3);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 5 });
    answer(0);
    await settleMicrotasks();
    expect(calls.map((c) => c.value)).toEqual(['A', 'B', 'A', 'A', 'C']);
    const s = batcher.stats();
    expect(s).toMatchObject({ submitted: 5, succeeded: 5, merged: 2, queued: 0, inFlight: 0, batches: 1, meanBatchSize: 3, batchSizes: { 3: 1 } });
    addsUp(s);
  });

  it('shares the very result object (as DataLoader does), and results$ carries each caller’s own id, input and context', () => {
    const { scheduler, batches, batcher, settlements } = held();
    batcher.run$('a', { context: 'first' }).subscribe();
    batcher.run$('a', { context: 'second' }).subscribe();
    batcher.run$('a').subscribe();
    scheduler.advance(5);
    // runBatch sees the input once, with the context of the call that brought it first.
    expect(batches[0].ctx.contexts).toEqual(['first']);
    const shared = { score: 1 };
    batches[0].result.next([shared]);
    expect(settlements).toEqual([
      { status: 'fulfilled', value: shared, id: 1, input: 'a', context: 'first' },
      { status: 'fulfilled', value: shared, id: 2, input: 'a', context: 'second' },
      { status: 'fulfilled', value: shared, id: 3, input: 'a' },
    ]);
    expect(settlements[1].status === 'fulfilled' && settlements[1].value).toBe(shared);
  });

  it('joins a slot that is already running: no second model call', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const first = outcome(batcher.run('a'));
    scheduler.advance(5);
    expect(batches).toHaveLength(1);
    const late = outcome(batcher.run('a'));
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 2, merged: 1, batchesInFlight: 1 });
    scheduler.advance(50);
    expect(batches).toHaveLength(1); // nothing new was queued: no window, no batch
    answer(0);
    await settleMicrotasks();
    expect([first.value, late.value]).toEqual(['A', 'A']);
    addsUp(batcher.stats());
  });

  it('caches nothing: once the slot has settled, the same input runs again', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const first = batcher.run('a');
    scheduler.advance(5);
    answer(0);
    await expect(first).resolves.toBe('A');
    const again = batcher.run('a');
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a'], ['a']]);
    answer(1, () => 'A2');
    await expect(again).resolves.toBe('A2');
    expect(batcher.stats().merged).toBe(0);
  });

  it('keys are compared with ===: 1 and "1" are different inputs, so are two equal-looking objects keyed by themselves', async () => {
    const seen: unknown[][] = [];
    const batcher = new Batcher<unknown, string>({ maxBatchSize: 8, dedupeBy: (x) => (typeof x === 'object' ? JSON.stringify(x) : (x as number)), runBatch: (xs) => (seen.push([...xs]), xs.map((x) => typeof x)) });
    await Promise.all([batcher.run(1), batcher.run('1'), batcher.run(1), batcher.run({ id: 1 }), batcher.run({ id: 1 }), batcher.run(0), batcher.run(-0)]);
    expect(seen).toEqual([[1, '1', { id: 1 }, 0]]);
    expect(batcher.stats().merged).toBe(3);
  });
});

describe('dedupeBy: each caller settles on its own', () => {
  it('a caller aborting while queued leaves the others served; the input still runs once', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const controller = new AbortController();
    const gone = outcome(batcher.run('a', { signal: controller.signal }));
    const stays = outcome(batcher.run('a'));
    controller.abort(new Error('client left'));
    await settleMicrotasks();
    expect(gone.error).toEqual(new Error('client left'));
    expect(batcher.stats()).toMatchObject({ queued: 1, cancelled: 1, merged: 1 });
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a']]);
    answer(0);
    await settleMicrotasks();
    expect(stays.value).toBe('A');
    addsUp(batcher.stats());
  });

  it('the creator leaving does not take the slot with it; its context stays the one runBatch sees', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const controller = new AbortController();
    void batcher.run('a', { signal: controller.signal, context: 'creator' }).catch(() => undefined);
    const joined = outcome(batcher.run('a', { context: 'joiner' }));
    controller.abort(new Error('creator left'));
    scheduler.advance(5);
    expect(batches[0].ctx.contexts).toEqual(['creator']);
    answer(0);
    await settleMicrotasks();
    expect(joined.value).toBe('A');
  });

  it('a caller timing out while the slot runs fails alone (phase running); the others keep waiting', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const short = outcome(batcher.run('a', { timeoutMs: 8 }));
    const long = outcome(batcher.run('a', { timeoutMs: 100 }));
    const none = outcome(batcher.run('a'));
    scheduler.advance(5);
    scheduler.advance(3);
    await settleMicrotasks();
    expect(short.error).toBeInstanceOf(RequestTimeoutError);
    expect((short.error as Error).message).toBe('[rx-batcher] "dd": the request timed out after 8 ms while its batch was running. Raise timeoutMs, lower maxDelayMs, or add capacity (maxConcurrentBatches).');
    expect(batches[0].ctx.signal.aborted).toBe(false);
    expect(batcher.stats()).toMatchObject({ inFlight: 2, timedOut: 1 });
    answer(0);
    await settleMicrotasks();
    expect([long.value, none.value]).toEqual(['A', 'A']);
  });

  it('ctx.deadlines gives the shared input the latest deadline of its callers, or Infinity while one has none', () => {
    const { scheduler, batches, batcher } = held();
    void batcher.run('a', { timeoutMs: 10 });
    void batcher.run('a', { timeoutMs: 30 });
    void batcher.run('b', { timeoutMs: 20 });
    void batcher.run('b');
    scheduler.advance(5);
    expect(batches[0].ctx.deadlines).toEqual([30, Infinity]);
  });

  it('run$ unsubscribing drops only that caller', async () => {
    const { scheduler, batcher, answer } = held();
    const values: string[] = [];
    const sub = batcher.run$('a').subscribe((v) => values.push(`1:${v}`));
    batcher.run$('a').subscribe((v) => values.push(`2:${v}`));
    scheduler.advance(5);
    sub.unsubscribe();
    expect(batcher.stats()).toMatchObject({ inFlight: 1, cancelled: 1 });
    answer(0);
    expect(values).toEqual(['2:A']);
  });

  it('firstValueFrom over run$ works with a shared slot', async () => {
    const batcher = new Batcher<string, string>({ maxBatchSize: 2, dedupeBy: (x) => x, runBatch: (xs) => xs.map((x) => x + '!') });
    await expect(Promise.all([firstValueFrom(batcher.run$('a')), firstValueFrom(batcher.run$('a'))])).resolves.toEqual(['a!', 'a!']);
  });
});

describe('dedupeBy: the slot goes only when its last caller has', () => {
  it('every caller of a queued slot leaving cancels it: it never reaches runBatch', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const controllers = [new AbortController(), new AbortController()];
    const calls = controllers.map((c) => outcome(batcher.run('a', { signal: c.signal })));
    const other = outcome(batcher.run('b'));
    for (const c of controllers) c.abort(new Error('gone'));
    expect(batcher.stats()).toMatchObject({ queued: 1, cancelled: 2 });
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['b']]);
    answer(0);
    await settleMicrotasks();
    expect(calls.map((c) => c.error)).toEqual([new Error('gone'), new Error('gone')]);
    expect(other.value).toBe('B');
    // The key is free again: a new call makes a new slot.
    const again = outcome(batcher.run('a'));
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['b'], ['a']]);
    answer(1);
    await settleMicrotasks();
    expect(again.value).toBe('A');
    addsUp(batcher.stats());
  });

  it('every caller of a running slot leaving aborts its batch signal and frees the slot, when nobody else is in the batch', async () => {
    const { scheduler, batches, batcher, answer } = held({ maxConcurrentBatches: 1 });
    const controllers = [new AbortController(), new AbortController()];
    controllers.forEach((c) => void batcher.run('a', { signal: c.signal }).catch(() => undefined));
    scheduler.advance(5);
    const signal = batches[0].ctx.signal;
    controllers[0].abort(new Error('gone'));
    expect(signal.aborted).toBe(false); // one caller still waits
    controllers[1].abort(new Error('gone'));
    expect(signal.aborted).toBe(true);
    expect(batcher.stats()).toMatchObject({ abandonedBatches: 1, batchesInFlight: 0, inFlight: 0, cancelled: 2 });
    // The slot is free: the next batch runs while the abandoned one has not answered.
    const next = outcome(batcher.run('a'));
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a'], ['a']]);
    answer(0, () => 'stale'); // dropped
    answer(1);
    await settleMicrotasks();
    expect(next.value).toBe('A');
    addsUp(batcher.stats());
  });

  it('a batch holding another input keeps running when one shared input loses all its callers; that input’s result is dropped', async () => {
    const { scheduler, batches, batcher, answer } = held();
    const controller = new AbortController();
    const gone = outcome(batcher.run('a', { signal: controller.signal }));
    const b1 = outcome(batcher.run('b'));
    const b2 = outcome(batcher.run('b'));
    scheduler.advance(5);
    controller.abort(new Error('gone'));
    expect(batches[0].ctx.signal.aborted).toBe(false);
    // A call for 'a' now opens a new slot: the old one is cancelled, not joinable.
    void batcher.run('a');
    expect(batcher.stats()).toMatchObject({ merged: 1, queued: 1, inFlight: 2 });
    answer(0);
    await settleMicrotasks();
    expect([gone.error, b1.value, b2.value]).toEqual([new Error('gone'), 'B', 'B']);
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a', 'b'], ['a']]);
  });

  it('a promise in the shared input’s result slot settles every caller; the last caller leaving first tells its owner', async () => {
    const { scheduler, batches, batcher } = held();
    let resolveLate!: (v: string) => void;
    const calls = [outcome(batcher.run('a')), outcome(batcher.run('a'))];
    scheduler.advance(5);
    batches[0].result.next([new Promise<string>((resolve) => (resolveLate = resolve))]);
    const joined = outcome(batcher.run('a')); // the slot still runs: its promise is pending
    expect(batcher.stats()).toMatchObject({ inFlight: 3, batchesInFlight: 1, merged: 2 });
    resolveLate('late');
    await settleMicrotasks();
    expect([...calls, joined].map((c) => c.value)).toEqual(['late', 'late', 'late']);
    expect(batcher.stats()).toMatchObject({ inFlight: 0, batchesInFlight: 0, succeeded: 3 });
  });
});

describe('dedupeBy: the slot’s outcome reaches every caller', () => {
  it('an Error in the slot fails every caller of that input, with that error, and no one else', async () => {
    const { scheduler, batcher, answer } = held();
    const calls = ['a', 'b', 'a'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(5);
    const boom = new Error('bad a');
    answer(0, (x) => (x === 'a' ? boom : 'ok'));
    await settleMicrotasks();
    expect(calls.map((c) => c.error ?? c.value)).toEqual([boom, 'ok', boom]);
    expect(batcher.stats()).toMatchObject({ failed: 2, succeeded: 1, failedBatches: 0 });
  });

  it('runBatch throwing or breaking the result contract fails every caller of the batch', async () => {
    const { scheduler, batches, batcher } = held();
    const calls = ['a', 'a', 'b'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(5);
    batches[0].result.error(new Error('model crashed'));
    const more = ['c', 'c'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(5);
    batches[1].result.next([]);
    await settleMicrotasks();
    expect(calls.map((c) => c.error)).toEqual([new Error('model crashed'), new Error('model crashed'), new Error('model crashed')]);
    for (const c of more) expect(c.error).toBeInstanceOf(BatchResultError);
    expect(batcher.stats()).toMatchObject({ failed: 5, failedBatches: 2, merged: 2 });
  });

  it('stop() rejects every caller of a queued slot with BatcherStoppedError; a running slot still delivers to all', async () => {
    const { scheduler, batcher, answer } = held();
    const running = [outcome(batcher.run('a')), outcome(batcher.run('a'))];
    scheduler.advance(5);
    const queued = [outcome(batcher.run('b')), outcome(batcher.run('b'))];
    const stopped = batcher.stop();
    await settleMicrotasks();
    for (const c of queued) expect(c.error).toBeInstanceOf(BatcherStoppedError);
    expect((queued[0].error as Error).message).toBe((queued[1].error as Error).message);
    answer(0);
    await stopped;
    expect(running.map((c) => c.value)).toEqual(['A', 'A']);
    expect(batcher.stats()).toMatchObject({ rejected: 2, succeeded: 2, queued: 0, inFlight: 0, stopped: true });
  });

  it('stop({ drain: true }) runs every queued slot and answers all its callers', async () => {
    const { batches, batcher, answer } = held({ maxDelayMs: 1000 });
    const calls = ['a', 'b', 'a', 'b', 'a'].map((x) => outcome(batcher.run(x)));
    const stopped = batcher.stop({ drain: true });
    expect(batches.map((b) => [b.inputs, b.ctx.reason])).toEqual([[['a', 'b'], 'drain']]);
    answer(0);
    await stopped;
    expect(calls.map((c) => c.value)).toEqual(['A', 'B', 'A', 'B', 'A']);
    addsUp(batcher.stats());
  });
});

describe('dedupeBy with the other rules', () => {
  it('is scoped to the partition: the same key in two partitions is two inputs', async () => {
    const seen: [string | undefined, string[]][] = [];
    const batcher = new Batcher<{ model: string; text: string }, string>({
      maxBatchSize: 8,
      partitionBy: (x) => x.model,
      dedupeBy: (x) => x.text,
      runBatch: (xs, ctx) => (seen.push([ctx.partition, xs.map((x) => x.text)]), xs.map((x) => `${x.model}:${x.text}`)),
    });
    const out = await Promise.all([
      batcher.run({ model: 'm1', text: 'hi' }),
      batcher.run({ model: 'm2', text: 'hi' }),
      batcher.run({ model: 'm1', text: 'hi' }),
    ]);
    expect(out).toEqual(['m1:hi', 'm2:hi', 'm1:hi']);
    expect(seen).toEqual([['m1', ['hi']], ['m2', ['hi']]]);
    expect(batcher.stats().merged).toBe(1);
  });

  it('with weigh, a shared input weighs once: callers who join add nothing to the batch', () => {
    const { scheduler, batches, batcher } = held({ weigh: (s) => s.length, maxBatchWeight: 6 });
    for (const x of ['aaa', 'aaa', 'aaa', 'bbb', 'cc']) void batcher.run(x);
    // aaa + bbb = 6: the budget is reached with two inputs, so it goes at once; cc waits.
    expect(batches.map((b) => [b.inputs, b.ctx.weight, b.ctx.reason])).toEqual([[['aaa', 'bbb'], 6, 'full']]);
    scheduler.advance(5);
  });

  it('a shared input keeps the priority of the call that brought it: a joiner with a higher one does not lift it', async () => {
    const { scheduler, batches, batcher, answer } = held({ maxBatchSize: 1, agingMs: Infinity });
    const busy = outcome(batcher.run('busy'));
    scheduler.advance(5); // 'busy' runs: the next ones queue, and go one by one, best first
    const a = [outcome(batcher.run('a', { priority: 1 })), outcome(batcher.run('a', { priority: 5 }))];
    const c = [outcome(batcher.run('c', { priority: 3 })), outcome(batcher.run('c'))];
    const b = outcome(batcher.run('b', { priority: 2 }));
    for (let i = 0; i < 4; i++) {
      answer(i);
      await settleMicrotasks();
    }
    expect(batches.map((x) => [x.inputs[0], x.ctx.priorities[0]])).toEqual([['busy', 0], ['c', 3], ['b', 2], ['a', 1]]);
    expect([busy, ...a, ...c, b].map((x) => x.value)).toEqual(['BUSY', 'A', 'A', 'C', 'C', 'B']);
  });

  it('dedupes on the input as runBatch sees it, after defaults', async () => {
    const seen: unknown[][] = [];
    const batcher = new Batcher<{ text: string; lang?: string }, string>({
      maxBatchSize: 8,
      defaults: { lang: 'en' },
      dedupeBy: (x) => `${x.lang}|${x.text}`,
      runBatch: (xs) => (seen.push(xs.map((x) => `${x.lang}|${x.text}`)), xs.map((x) => x.text)),
    });
    await Promise.all([batcher.run({ text: 'a' }), batcher.run({ text: 'a', lang: 'en' }), batcher.run({ text: 'a', lang: 'de' })]);
    expect(seen).toEqual([['en|a', 'de|a']]);
  });

  it('maxQueueSize counts callers, merged ones too: a full queue refuses a call that could have joined', async () => {
    const { batcher } = held({ maxQueueSize: 2 });
    void batcher.run('a');
    void batcher.run('a');
    await expect(batcher.run('a')).rejects.toThrow('[rx-batcher] "dd": the queue is full');
    expect(batcher.stats()).toMatchObject({ queued: 2, merged: 1, rejected: 1 });
  });

  it('a caller hearing its result synchronously (run$) and calling again with the same key opens a new slot', () => {
    const { scheduler, batches, batcher, answer } = held();
    const values: string[] = [];
    batcher.run$('a').subscribe((v) => {
      values.push(v);
      if (values.length === 1) batcher.run$('a').subscribe((w) => values.push(`again ${w}`));
    });
    batcher.run$('a').subscribe((v) => values.push(v));
    scheduler.advance(5);
    answer(0);
    expect(values).toEqual(['A', 'A']);
    scheduler.advance(5);
    expect(batches.map((b) => b.inputs)).toEqual([['a'], ['a']]);
    answer(1);
    expect(values).toEqual(['A', 'A', 'again A']);
  });
});

describe('dedupeBy: abuse, with exact messages', () => {
  const runBatch = (xs: readonly string[]): string[] => [...xs];

  it('must be a function', () => {
    expect(() => new Batcher<string, string>({ name: 'd', maxBatchSize: 2, runBatch, dedupeBy: 'id' as never })).toThrow(
      new TypeError('[rx-batcher] "d": `dedupeBy` must be a function (input) => key, a string or number equal for identical inputs, got "id" (string).'),
    );
    expect(() => batchMap(runBatch, { maxBatchSize: 2, dedupeBy: true as never })).toThrow(
      '[rx-batcher] "batchMap": `dedupeBy` must be a function (input) => key, a string or number equal for identical inputs, got true (boolean).',
    );
  });

  it('hints dedupeBy for DataLoader’s cacheKeyFn and near misses', () => {
    expect(() => new Batcher({ maxBatchSize: 2, runBatch, cacheKeyFn: (x: string) => x } as never)).toThrow('[rx-batcher] "batcher": unknown option `cacheKeyFn`; did you mean `dedupeBy`?');
    expect(() => new Batcher({ maxBatchSize: 2, runBatch, dedupe: true } as never)).toThrow('did you mean `dedupeBy`?');
    expect(() => new Batcher({ maxBatchSize: 2, runBatch, dedupBy: (x: string) => x } as never)).toThrow('did you mean `dedupeBy`?');
  });

  it('is fixed at construction: configure() refuses it', () => {
    const batcher = new Batcher<string, string>({ name: 'd', maxBatchSize: 2, runBatch, dedupeBy: (x) => x });
    expect(() => batcher.configure({ dedupeBy: (x: string) => x } as never)).toThrow(
      '[rx-batcher] "d": configure(options): `dedupeBy` is fixed at construction (what can change: maxBatchSize, maxDelayMs, maxConcurrentBatches, maxQueueSize, maxBatchWeight, agingMs, latencyTarget, isolateFailures). Nothing was changed.',
    );
  });

  it.each([
    ['undefined', () => undefined, 'must return a string or a finite number, returned undefined.'],
    ['an object', () => ({ id: 1 }), 'must return a string or a finite number, returned an object (object).'],
    ['NaN', () => NaN, 'must return a string or a finite number, returned NaN (number).'],
    ['Infinity', () => Infinity, 'must return a string or a finite number, returned Infinity (number).'],
    ['a symbol', () => Symbol('k'), 'must return a string or a finite number, returned Symbol(k) (symbol).'],
    ['a throw', () => { throw new Error('no id field'); }, 'threw: no id field'],
  ])('dedupeBy returning %s fails that call alone, naming dedupeBy and the value; its neighbours run', async (_what, bad, message) => {
    const seen: string[][] = [];
    const batcher = new Batcher<string, string>({
      name: 'k',
      maxBatchSize: 4,
      dedupeBy: (s) => (s === 'bad' ? (bad() as unknown as string) : s),
      runBatch: (xs) => (seen.push([...xs]), xs.map((x) => x.toUpperCase())),
    });
    const [a, b, c] = [batcher.run('a'), batcher.run('bad'), batcher.run('a')];
    await expect(b).rejects.toThrow(TypeError);
    await expect(b).rejects.toThrow(`[rx-batcher] "k": run(input): \`dedupeBy(input)\` ${message}`);
    await expect(Promise.all([a, c])).resolves.toEqual(['A', 'A']);
    expect(seen).toEqual([['a']]);
    expect(batcher.stats()).toMatchObject({ submitted: 3, rejected: 1, succeeded: 2, merged: 1 });
  });

  it('keeps the thrown error as the cause', async () => {
    const cause = new RangeError('deep');
    const batcher = new Batcher<string, string>({ maxBatchSize: 2, runBatch, dedupeBy: () => { throw cause; } });
    const error = await batcher.run('x').catch((e: unknown) => e);
    expect((error as Error).cause).toBe(cause);
  });

  it('accepts the edge keys: the empty string, 0, negative and fractional numbers', async () => {
    const batcher = new Batcher<string | number, string>({ maxBatchSize: 8, runBatch: (xs) => xs.map(String), dedupeBy: (x) => x });
    await expect(Promise.all(['', 0, -1.5, '', 0].map((x) => batcher.run(x)))).resolves.toEqual(['', '0', '-1.5', '', '0']);
    expect(batcher.stats().merged).toBe(2);
  });
});

describe('dedupeBy in batchMap', () => {
  it('each value still gets its own output, in source order; runBatch sees each key once per batch', async () => {
    const seen: string[][] = [];
    const out = await lastValueFrom(
      from(['a', 'b', 'a', 'c', 'a', 'b']).pipe(
        batchMap(async (xs) => (seen.push([...xs]), xs.map((x) => x.toUpperCase())), { maxBatchSize: 2, dedupeBy: (x) => x }),
        toArray(),
      ),
    );
    expect(out).toEqual(['A', 'B', 'A', 'C', 'A', 'B']);
    // [a, b] is full at once and runs; the later a, a and b join it while it runs; c waits for the next batch.
    expect(seen).toEqual([['a', 'b'], ['c']]);
  });

  it('batchMapSettled reports each value’s own settlement, a shared Error for each caller of that input', async () => {
    const boom = new Error('no b');
    const out = await lastValueFrom(
      from(['a', 'b', 'b']).pipe(batchMapSettled((xs) => xs.map((x) => (x === 'b' ? boom : x)), { maxBatchSize: 4, dedupeBy: (x) => x }), toArray()),
    );
    expect(out).toEqual([
      { status: 'fulfilled', value: 'a', id: 1, input: 'a' },
      { status: 'rejected', reason: boom, id: 2, input: 'b' },
      { status: 'rejected', reason: boom, id: 3, input: 'b' },
    ]);
  });

  it('marbles: a duplicate arriving while its input runs joins it, one arriving after gets a new call', () => {
    const testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    testScheduler.run(({ hot, cold, expectObservable }) => {
      const log: [number, string[]][] = [];
      const source = hot('-a-a--b--a-|');
      const runBatch = (xs: readonly string[]) => (log.push([testScheduler.now(), [...xs]]), cold('---(x|)', { x: xs.map((s) => s.toUpperCase()) }));
      const out = source.pipe(batchMap(runBatch, { maxBatchSize: 4, maxDelayMs: 1, dedupeBy: (x) => x }));
      // a at 1 runs 2..5 and the a at 3 joins it; b runs 7..10; the a at 9 waits for the slot, runs 10..13.
      expectObservable(out).toBe('-----(AA)-B--(A|)', { A: 'A', B: 'B' });
      testScheduler.flush();
      expect(log).toEqual([[2, ['a']], [7, ['b']], [10, ['a']]]);
    });
  });
});

describe('dedupeBy: room() counts inputs, not callers', () => {
  it('callers sharing a slot take one place of the next batch (what a worker pulls by)', () => {
    const config = normalizeOptions<string, string>({ maxBatchSize: 4, maxDelayMs: 1000, dedupeBy: (x: string) => x, scheduler: new ManualScheduler() }, () => [], BATCHER_FACE);
    const engine = new BatchEngine<string, string>(config);
    class Quiet extends EngineRequest<string, string> {
      deliver(): void {}
    }
    for (const x of ['a', 'a', 'a', 'b']) engine.submit(new Quiet(x));
    expect(engine.counters.queued).toBe(4);
    expect(engine.room()).toBe(2);
    engine.dispose();
  });
});

describe('dedupeBy across a broker', () => {
  it('on a producer: identical calls waiting for an answer share one request to the workers and its reply', async () => {
    const clock = new VirtualTimeScheduler();
    const t = memoryTransport({ scheduler: clock });
    const seen: string[][] = [];
    const worker = await serveBatches<string, string>(t, 'dd', (xs) => (seen.push([...xs]), xs.map((x) => x.toUpperCase())), { maxBatchSize: 8, maxDelayMs: 10, scheduler: clock });
    const producer = remoteBatcher<string, string>(t, 'dd', { dedupeBy: (x) => x, scheduler: clock });
    const calls = ['a', 'b', 'a'].map((x) => outcome(producer.run(x)));
    await advanceVirtualClock(clock, 1);
    const joined = outcome(producer.run('a')); // sent and not answered yet: it joins
    await advanceVirtualClock(clock, 9);
    expect(seen).toEqual([['a', 'b']]);
    expect([...calls, joined].map((c) => c.value)).toEqual(['A', 'B', 'A', 'A']);
    expect(producer.stats()).toMatchObject({ merged: 2, succeeded: 4, batches: 1, duplicatesDropped: 0 });
    expect(worker.stats()).toMatchObject({ pulled: 2, succeeded: 2 });
    await producer.stop();
    const stopped = worker.stop();
    await advanceVirtualClock(clock, 10);
    await stopped;
  });

  it('on a worker: identical requests it holds at once, from any producer, run once and each get a reply', async () => {
    const clock = new VirtualTimeScheduler();
    const t = memoryTransport({ scheduler: clock });
    const seen: [number, string[]][] = [];
    const worker = await serveBatches<string, string>(t, 'dw', (xs) => (seen.push([clock.now(), [...xs]]), xs.map((x) => x.toUpperCase())), {
      maxBatchSize: 8, maxDelayMs: 10, dedupeBy: (x) => x, scheduler: clock,
    });
    const [p1, p2] = [remoteBatcher<string, string>(t, 'dw', { scheduler: clock }), remoteBatcher<string, string>(t, 'dw', { scheduler: clock })];
    const calls = [outcome(p1.run('a')), outcome(p2.run('a')), outcome(p1.run('b'))];
    await advanceVirtualClock(clock, 10);
    expect(seen).toEqual([[10, ['a', 'b']]]);
    expect(calls.map((c) => c.value)).toEqual(['A', 'A', 'B']);
    expect(worker.stats()).toMatchObject({ pulled: 3, merged: 1, succeeded: 3, batchSizes: { 2: 1 } });
    await Promise.all([p1.stop(), p2.stop()]);
    const stopped = worker.stop();
    await advanceVirtualClock(clock, 10);
    await stopped;
  });

  it('a producer and a worker refuse a dedupeBy that is not a function', async () => {
    const t = memoryTransport();
    expect(() => remoteBatcher(t, 's', { dedupeBy: 1 as never })).toThrow('[rx-batcher] "s": `dedupeBy` must be a function (input) => key, a string or number equal for identical inputs, got 1 (number).');
    await expect(serveBatches(t, 's', (xs) => [...xs], { maxBatchSize: 2, name: 'w', dedupeBy: {} as never })).rejects.toThrow(
      '[rx-batcher] "w": `dedupeBy` must be a function (input) => key, a string or number equal for identical inputs, got an object (object).',
    );
  });
});
