/**
 * Issue 14: every request settles, always. Each case of the issue is a named regression test
 * here; they must survive the engine unification.
 */
import { firstValueFrom, Observable, of } from 'rxjs';
import { Batcher, BatchResultError, RequestTimeoutError } from '../lib';
import { ManualScheduler } from './helpers/manualScheduler';
import { LIB, runChild } from './helpers/childProcess';
import { deferred, type Deferred } from './helpers/recording';

/** Lets promise callbacks (and the engine's reactions to them) run. */
async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/**
 * The setting of case 1: batches of 4, a 10 ms window, one slot, on a manual clock; every
 * batch is recorded and held until the test resolves its entry of `running`.
 */
function heldBatcher() {
  const scheduler = new ManualScheduler();
  const running: Deferred<number[]>[] = [];
  const batches: number[][] = [];
  const batcher = new Batcher<number, number>({
    maxBatchSize: 4,
    maxDelayMs: 10,
    scheduler,
    runBatch: (xs) => {
      batches.push([...xs]);
      const d = deferred<number[]>();
      running.push(d);
      return d.promise;
    },
  });
  return { scheduler, running, batches, batcher };
}

describe('issue 14 case 1: a full queued batch that loses a request', () => {
  it.each(['abort', 'timeout'] as const)('dispatches the rest when the running batch finishes (%s)', async (how) => {
    const { scheduler, running, batches, batcher } = heldBatcher();
    const first = [0, 1, 2, 3].map((x) => batcher.run(x));
    expect(batches).toEqual([[0, 1, 2, 3]]);
    const controller = new AbortController();
    const queued = [4, 5, 6, 7].map((x) =>
      x === 5
        ? batcher.run(x, how === 'abort' ? { signal: controller.signal } : { timeoutMs: 3 })
        : batcher.run(x),
    );
    const lost = queued[1].catch((e: unknown) => e);
    if (how === 'abort') controller.abort(new Error('client left'));
    else scheduler.advance(3);
    expect(await lost).toBeInstanceOf(Error);
    expect(batcher.stats()).toMatchObject({ queued: 3, inFlight: 4 });

    running[0].resolve([0, 10, 20, 30]);
    await expect(Promise.all(first)).resolves.toEqual([0, 10, 20, 30]);
    // The window of the three left (opened at t=0 by request 4) has passed: they go at once.
    scheduler.advance(10);
    expect(batches).toEqual([[0, 1, 2, 3], [4, 6, 7]]);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 3 });
    running[1].resolve([40, 60, 70]);
    await expect(Promise.all([queued[0], queued[2], queued[3]])).resolves.toEqual([40, 60, 70]);
    await batcher.stop();
  });

  it('keeps the window of the three left: they wait maxDelayMs from the oldest, not forever', async () => {
    const { scheduler, running, batches, batcher } = heldBatcher();
    [0, 1, 2, 3].forEach((x) => void batcher.run(x));
    const controller = new AbortController();
    scheduler.advance(2);
    const rest = [4, 5, 6, 7].map((x) => batcher.run(x, x === 4 ? { signal: controller.signal } : undefined).catch((e: unknown) => e));
    controller.abort(new Error('gone'));
    running[0].resolve([0, 0, 0, 0]);
    await settleMicrotasks();
    // Requests 5..7 arrived at t=2: not due before t=12.
    scheduler.advance(9);
    expect(batches).toHaveLength(1);
    scheduler.advance(1);
    expect(batches).toEqual([[0, 1, 2, 3], [5, 6, 7]]);
    running[1].resolve([5, 6, 7]);
    expect(await Promise.all(rest.slice(1))).toEqual([5, 6, 7]);
    await batcher.stop();
  });
});

describe('issue 14 case 2: stop({ drain: true }) with a synchronous runBatch', () => {
  const answers = {
    'returns an array': (xs: readonly number[]) => xs.map((x) => x * 2),
    'returns of(results)': (xs: readonly number[]) => of(xs.map((x) => x * 2)),
    throws: () => {
      throw new Error('model down');
    },
  };
  it.each(Object.keys(answers) as (keyof typeof answers)[])('resolves when runBatch %s, and so does a later stop()', async (kind) => {
    const scheduler = new ManualScheduler();
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, maxDelayMs: 50, scheduler, runBatch: answers[kind] });
    const calls = [1, 2, 3].map((x) => batcher.run(x).then((v) => v, (e: unknown) => e));
    let completed = false;
    batcher.results$.subscribe({ complete: () => (completed = true) });
    let stopped = false;
    const stop = batcher.stop({ drain: true }).then(() => (stopped = true));
    await settleMicrotasks();
    expect(completed).toBe(true);
    expect(stopped).toBe(true);
    await stop;
    const again = await Promise.race([batcher.stop().then(() => 'resolved'), settleMicrotasks().then(() => 'hung')]);
    expect(again).toBe('resolved');
    const results = await Promise.all(calls);
    if (kind === 'throws') for (const r of results) expect(r).toEqual(new Error('model down'));
    else expect(results).toEqual([2, 4, 6]);
    expect(scheduler.scheduledCount).toBe(0);
  });

  it('resolves a plain stop() with nothing queued and a stop() after the engine has stopped', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: (xs) => [...xs] });
    await batcher.stop({ drain: true });
    await expect(batcher.stop({ drain: true })).resolves.toBeUndefined();
    await expect(batcher.stop()).resolves.toBeUndefined();
  });
});

/** Result shapes that throw when the engine looks at them. */
function hostileResults(kind: string, xs: readonly number[]): unknown {
  switch (kind) {
    case 'then throws':
      return { then: () => { throw new Error('then exploded'); } };
    case 'then getter throws':
      return { get then(): never { throw new Error('then getter exploded'); } };
    case 'element getter throws (sync)':
    case 'element getter throws (async)': {
      const results = xs.map((x) => x * 2);
      Object.defineProperty(results, 0, { get: () => { throw new Error('slot 0 exploded'); } });
      return kind.endsWith('(sync)') ? results : Promise.resolve(results);
    }
    case 'not array-like, constructor getter throws':
      return Promise.resolve(new Proxy({}, { get: (_t, k) => { if (k === 'constructor') throw new Error('constructor exploded'); return undefined; } }));
    case 'length getter throws':
      return Promise.resolve(new Proxy(xs.map((x) => x * 2), { get: (t, k) => { if (k === 'length') throw new Error('length exploded'); return Reflect.get(t, k); } }));
    default:
      throw new Error(kind);
  }
}
const HOSTILE = ['then throws', 'then getter throws', 'element getter throws (sync)', 'element getter throws (async)', 'length getter throws', 'not array-like, constructor getter throws'];

describe('issue 14 case 3: a result that throws when looked at', () => {
  it.each(HOSTILE)('%s: its callers settle at once and the next batch is served', async (kind) => {
    let call = 0;
    const batcher = new Batcher<number, number>({
      maxBatchSize: 2,
      runBatch: (xs) => (call++ === 0 ? hostileResults(kind, xs) : xs.map((x) => x * 2)) as number[],
    });
    const first = await Promise.allSettled([batcher.run(1), batcher.run(2)]);
    if (kind.startsWith('element')) {
      expect(first[0]).toMatchObject({ status: 'rejected', reason: new Error('slot 0 exploded') });
      expect(first[1]).toEqual({ status: 'fulfilled', value: 4 });
    } else {
      for (const r of first) expect(r.status).toBe('rejected');
    }
    await expect(Promise.all([batcher.run(3), batcher.run(4)])).resolves.toEqual([6, 8]);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, submitted: 4 });
    await batcher.stop();
  });

  it('does not crash a plain Node process', async () => {
    const code = `
      const { Batcher } = require(${JSON.stringify(LIB)});
      const hostile = ${hostileResults.toString()};
      const kinds = ${JSON.stringify(HOSTILE)};
      (async () => {
        const lines = [];
        for (const kind of kinds) {
          let call = 0;
          const b = new Batcher({ maxBatchSize: 2, runBatch: (xs) => (call++ === 0 ? hostile(kind, xs) : xs.map((x) => x * 2)) });
          const first = await Promise.allSettled([b.run(1), b.run(2)]);
          const next = await Promise.all([b.run(3), b.run(4)]);
          await b.stop();
          lines.push(kind + ': ' + first.map((r) => r.status).join(',') + ' then ' + next.join(','));
        }
        console.log(lines.join('\\n'));
      })();
    `;
    const { code: exit, out, err } = await runChild(code);
    expect(err).toBe('');
    expect(exit).toBe(0);
    expect(out.trim().split('\n')).toEqual([
      'then throws: rejected,rejected then 6,8',
      'then getter throws: rejected,rejected then 6,8',
      'element getter throws (sync): rejected,fulfilled then 6,8',
      'element getter throws (async): rejected,fulfilled then 6,8',
      'length getter throws: rejected,rejected then 6,8',
      'not array-like, constructor getter throws: rejected,rejected then 6,8',
    ]);
  });
});

describe('issue 14 case 5: a runBatch that never settles and ignores ctx.signal', () => {
  it('frees its slot once every caller has gone, drops a late result, counts it, and stop() resolves', async () => {
    const scheduler = new ManualScheduler();
    const signals: AbortSignal[] = [];
    const late: Deferred<number[]>[] = [];
    let call = 0;
    const batcher = new Batcher<number, number>({
      maxBatchSize: 2,
      maxDelayMs: 0,
      timeoutMs: 100,
      scheduler,
      runBatch: (xs, ctx) => {
        signals.push(ctx.signal);
        if (call++ === 0) {
          const d = deferred<number[]>();
          late.push(d);
          return d.promise; // ignores its signal, answers only when the test says so
        }
        return xs.map((x) => x * 2);
      },
    });
    const stuck = [batcher.run(1), batcher.run(2)].map((p) => p.catch((e: unknown) => e));
    scheduler.advance(0);
    scheduler.advance(50);
    const next = [batcher.run(3), batcher.run(4)]; // queued behind the stuck batch
    expect(batcher.stats()).toMatchObject({ queued: 2, inFlight: 2, batchesInFlight: 1 });
    scheduler.advance(50); // the stuck batch's callers time out
    for (const e of await Promise.all(stuck)) expect(e).toBeInstanceOf(RequestTimeoutError);
    expect(signals[0].aborted).toBe(true);
    // The slot is free: the queued pair runs long before its own deadline.
    await expect(Promise.all(next)).resolves.toEqual([6, 8]);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, abandonedBatches: 1, failedBatches: 0, timedOut: 2, succeeded: 2 });
    expect(batcher.stats().lastBatch?.outcome).toBe('succeeded');
    await expect(batcher.stop()).resolves.toBeUndefined();
    // The late answer is dropped: nobody settles twice, nothing changes.
    const before = batcher.stats();
    late[0].resolve([10, 20]);
    await settleMicrotasks();
    expect(batcher.stats()).toBe(before);
  });

  it('stop() resolves when the running batch is abandoned after the stop', async () => {
    const scheduler = new ManualScheduler();
    const batcher = new Batcher<number, number>({ maxBatchSize: 1, scheduler, runBatch: () => new Promise<number[]>(() => {}) });
    const controller = new AbortController();
    const call = batcher.run(1, { signal: controller.signal }).catch((e: unknown) => e);
    scheduler.advance(0);
    expect(batcher.stats().batchesInFlight).toBe(1);
    let stopped = false;
    const stop = batcher.stop().then(() => (stopped = true));
    await settleMicrotasks();
    expect(stopped).toBe(false);
    controller.abort(new Error('client left'));
    expect(await call).toEqual(new Error('client left'));
    await stop;
    expect(batcher.stats()).toMatchObject({ abandonedBatches: 1, batchesInFlight: 0, stopped: true });
    expect(Object.isFrozen(batcher.stats())).toBe(true);
  });
});

describe('issue 14 case 4: defaults with an input that cannot be read', () => {
  interface Greeting { name: string; last?: string }
  const throwing = (where: 'getter' | 'copy'): Greeting => {
    const input = { name: 'Ada' } as Greeting;
    if (where === 'getter') Object.defineProperty(input, 'last', { get: () => { throw new Error('getter exploded'); }, enumerable: true });
    else Object.defineProperty(input, 'mood', { get: () => { throw new Error('copy exploded'); }, enumerable: true });
    return input;
  };

  it.each([
    ['getter', 'reading its `last`', 'getter exploded'],
    ['copy', 'copying the input', 'copy exploded'],
  ] as const)('rejects that call alone with a TypeError (%s), even with timeoutMs, and stats add up', async (where, step, message) => {
    const batcher = new Batcher<Greeting, string>({
      name: 'g', maxBatchSize: 2, timeoutMs: 1000, defaults: { last: 'Lovelace' },
      runBatch: (xs) => xs.map((x) => `${x.name} ${x.last}`),
    });
    const bad = batcher.run(throwing(where));
    const good = batcher.run({ name: 'Grace', last: 'Hopper' });
    const error = await bad.catch((e: unknown) => e);
    expect(error).toEqual(new TypeError(`[rx-batcher] "g": run(input): \`defaults\` are set, but ${step} to fill them in threw Error: ${message}.`));
    expect((error as Error).cause).toEqual(new Error(message));
    await expect(good).resolves.toBe('Grace Hopper');
    const s = batcher.stats();
    expect(s).toMatchObject({ submitted: 2, rejected: 1, succeeded: 1, queued: 0, inFlight: 0 });
    await batcher.stop();
  });

  it('takes an input that is itself an Error as an input, not as a refusal', async () => {
    const batcher = new Batcher<Error & { code?: number }, number>({ maxBatchSize: 1, defaults: { code: 7 }, runBatch: (xs) => xs.map((x) => x.code!) });
    await expect(batcher.run(Object.assign(new TypeError('an input'), { code: 3 }))).resolves.toBe(3);
    await batcher.stop();
  });
});

describe('issue 14 case 6: run(x, { timeoutMs: Infinity })', () => {
  it('overrides the batcher\'s timeoutMs: no deadline for that call', async () => {
    const scheduler = new ManualScheduler();
    const d = deferred<number[]>();
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, maxDelayMs: 0, timeoutMs: 10, scheduler, runBatch: () => d.promise });
    const forever = batcher.run(1, { timeoutMs: Infinity }).catch((e: unknown) => e);
    const bounded = batcher.run(2).catch((e: unknown) => e);
    const longer = batcher.run(3, { timeoutMs: 50 }).catch((e: unknown) => e);
    scheduler.advance(1_000_000);
    expect(await bounded).toBeInstanceOf(RequestTimeoutError);
    expect(await longer).toBeInstanceOf(RequestTimeoutError);
    expect(batcher.stats()).toMatchObject({ timedOut: 2, inFlight: 1 });
    d.resolve([10, 20]);
    expect(await forever).toBe(10);
    await batcher.stop();
    expect(scheduler.scheduledCount).toBe(0);
  });

  it('holds no deadline timer for it', () => {
    const scheduler = new ManualScheduler();
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, maxDelayMs: 0, timeoutMs: 10, scheduler, runBatch: () => new Promise<number[]>(() => {}) });
    void batcher.run(1, { timeoutMs: Infinity });
    scheduler.advance(0); // the zero window; the batch runs and never answers
    expect(batcher.stats().inFlight).toBe(1);
    expect(scheduler.scheduledCount).toBe(0);
    void batcher.stop();
  });
});

describe('issue 14 case 7: times beyond the 2^31-1 ms timer limit', () => {
  const DAY = 24 * 3600 * 1000;

  it.each([
    ['the batcher\'s timeoutMs', { timeoutMs: 40 * DAY }, undefined],
    ['a per-call timeoutMs', {}, { timeoutMs: 40 * DAY }],
  ] as const)('%s of 40 days fires after 40 days, not after 1 ms', async (_, options, call) => {
    const scheduler = new ManualScheduler({ nodeTimerLimits: true });
    const batcher = new Batcher<number, number>({ maxBatchSize: 1, scheduler, ...options, runBatch: () => new Promise<number[]>(() => {}) });
    let error: unknown;
    batcher.run(1, call).catch((e: unknown) => (error = e));
    scheduler.advance(0);
    scheduler.advance(1);
    scheduler.advance(30 * DAY);
    await settleMicrotasks();
    expect(error).toBeUndefined();
    scheduler.advance(10 * DAY - 2);
    await settleMicrotasks();
    expect(error).toBeUndefined();
    scheduler.advance(1);
    await settleMicrotasks();
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(scheduler.overflows).toBe(0);
    expect(scheduler.scheduledCount).toBe(0);
    void batcher.stop();
  });

  it('refuses maxDelayMs beyond 2^31-1 with a RangeError naming it and the value', () => {
    expect(() => new Batcher({ name: 'r', maxBatchSize: 2, maxDelayMs: 2 ** 31, runBatch: (xs: readonly number[]) => [...xs] })).toThrow(
      new RangeError('[rx-batcher] "r": `maxDelayMs` must be at most 2147483647 (2^31-1 ms, about 24.8 days, the longest timer Node runs), got 2147483648 (number). To send only full batches, set a long maxDelayMs and call flush() when needed.'),
    );
    expect(() => new Batcher({ maxBatchSize: 2, maxDelayMs: 2 ** 31 - 1, runBatch: (xs: readonly number[]) => [...xs] })).not.toThrow();
  });

  it('a maxDelayMs at the limit arms one window timer, not one per millisecond', async () => {
    const scheduler = new ManualScheduler({ nodeTimerLimits: true });
    const batches: number[][] = [];
    const batcher = new Batcher<number, number>({ maxBatchSize: 4, maxDelayMs: 2 ** 31 - 1, scheduler, runBatch: (xs) => (batches.push([...xs]), [...xs]) });
    const call = batcher.run(1);
    scheduler.advance(2 ** 31 - 2);
    expect(batches).toEqual([]);
    scheduler.advance(1);
    expect(batches).toEqual([[1]]);
    await expect(call).resolves.toBe(1);
    expect(scheduler.overflows).toBe(0);
    await batcher.stop();
  });
});

describe('issue 14 case 8: every ArrayLike result is accepted, as the type promises', () => {
  it.each([
    ['a plain array-like object', (xs: readonly number[]) => ({ length: xs.length, 0: xs[0] * 2, 1: xs[1] * 2 })],
    ['a Promise of one', async (xs: readonly number[]) => ({ length: xs.length, 0: xs[0] * 2, 1: xs[1] * 2 })],
    ['an Observable of one', (xs: readonly number[]) => of({ length: xs.length, 0: xs[0] * 2, 1: xs[1] * 2 })],
    ['a typed array', (xs: readonly number[]) => Int32Array.from(xs, (x) => x * 2)],
    ['arguments', (xs: readonly number[]) => (function (..._: number[]) { return arguments; })(xs[0] * 2, xs[1] * 2) as ArrayLike<number> & object],
  ])('%s', async (_, runBatch) => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch });
    await expect(Promise.all([batcher.run(1), batcher.run(2)])).resolves.toEqual([2, 4]);
    await batcher.stop();
  });

  it.each([
    ['a string', () => 'ab', 'returned "ab" (string)'],
    ['an object without a length', () => ({ 0: 1, 1: 2 }), 'returned an object (object)'],
    ['a length that is not a whole number', () => ({ length: 1.5 }), 'returned an object (object)'],
    ['a Set', () => new Set([1, 2]), 'returned a Set (object)'],
  ])('still refuses %s with BatchResultError', async (_, runBatch, detail) => {
    const batcher = new Batcher<number, number>({ name: 'r', maxBatchSize: 2, runBatch: runBatch as never });
    const results = await Promise.allSettled([batcher.run(1), batcher.run(2)]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as BatchResultError;
      expect(reason).toBeInstanceOf(BatchResultError);
      expect(reason.message).toContain(detail);
    }
    await batcher.stop();
  });

  it('refuses a wrong length with the length found', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: () => ({ length: 3, 0: 1, 1: 2, 2: 3 }) });
    const error = await batcher.run(1).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'BatchResultError', expected: 1, actual: 3 });
    await batcher.stop();
  });
});

describe('issue 14 case 9: unknown per-call options', () => {
  const make = () => new Batcher<number, number>({ name: 'u', maxBatchSize: 2, maxDelayMs: 5, runBatch: (xs) => [...xs] });

  it.each([
    [{ timeout: 5 }, 'unknown option `timeout`; did you mean `timeoutMs`?'],
    [{ signl: new AbortController().signal }, 'unknown option `signl`; did you mean `signal`?'],
    [{ timeoutMS: 5 }, 'unknown option `timeoutMS`; did you mean `timeoutMs`?'],
    [{ colour: 1 }, 'unknown option `colour`. Known options: signal, timeoutMs, context, priority.'],
    [{ prio: 1 }, 'unknown option `prio`; did you mean `priority`?'],
  ])('run(x, %p) rejects with a TypeError naming the option', async (options, message) => {
    const batcher = make();
    await expect(batcher.run(1, options as never)).rejects.toEqual(new TypeError(`[rx-batcher] "u": run(input, options): ${message}`));
    expect(batcher.stats()).toMatchObject({ submitted: 1, rejected: 1, queued: 0 });
    await batcher.stop();
  });

  it('run$(x, { timeout }) errors the same way', async () => {
    const batcher = make();
    await expect(firstValueFrom(batcher.run$(1, { timeout: 5 } as never))).rejects.toThrow('unknown option `timeout`; did you mean `timeoutMs`?');
    await batcher.stop();
  });

  it('stop({ drian: true }) rejects and leaves the batcher running: the queue is not discarded', async () => {
    const batcher = make();
    const queued = batcher.run(1);
    await expect(batcher.stop({ drian: true } as never)).rejects.toEqual(
      new TypeError('[rx-batcher] "u": stop(options): unknown option `drian`; did you mean `drain`? The batcher was not stopped.'),
    );
    expect(batcher.stats()).toMatchObject({ stopped: false, queued: 1 });
    await batcher.stop({ drain: true });
    await expect(queued).resolves.toBe(1);
  });

  it('stop([]) is refused as not an options object', async () => {
    const batcher = make();
    await expect(batcher.stop([] as never)).rejects.toThrow('stop(options): `options` must be an object like { drain: true }, got an array of length 0 (object).');
    await batcher.stop();
  });
});

describe('issue 14: the stress run that found case 1', () => {
  /** A small seeded PRNG (mulberry32), so the run is the same every time. */
  function random(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it.each([1, 2, 3, 4])('10k requests in bursts, with random aborts and timeouts: none stranded when traffic stops (seed %i)', (seed) => {
    const rnd = random(seed);
    const scheduler = new ManualScheduler();
    const batcher = new Batcher<number, number>({
      maxBatchSize: 4,
      maxDelayMs: 10,
      scheduler,
      // Answers after 1-4 virtual ms, on the same clock: about as fast as requests arrive.
      runBatch: (xs) => new Observable<number[]>((sub) => scheduler.schedule(() => sub.next(xs.map((x) => x * 2)), 1 + Math.floor(rnd() * 4))),
    });
    let settled = 0;
    batcher.results$.subscribe(() => settled++);
    // 400 bursts of 25 requests; after each, traffic stops and whatever waits must go out on its own.
    let stranded = 0;
    for (let burst = 0; burst < 400; burst++) {
      const controllers: AbortController[] = [];
      for (let i = 0; i < 25; i++) {
        const controller = new AbortController();
        controllers.push(controller);
        batcher.run(burst * 25 + i, { signal: controller.signal, timeoutMs: rnd() < 0.1 ? 1 + Math.floor(rnd() * 20) : undefined }).catch(() => {});
        if (rnd() < 0.1) controllers[controllers.length - 1 - Math.floor(rnd() * Math.min(8, controllers.length))].abort(new Error('client left'));
        if (rnd() < 0.6) scheduler.advance(1);
      }
      scheduler.advance(100);
      stranded += batcher.stats().queued;
    }
    expect(stranded).toBe(0);
    expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, submitted: 10_000 });
    expect(settled).toBe(10_000);
    expect(scheduler.scheduledCount).toBe(0);
    void batcher.stop();
  });
});
