/**
 * Issue 14: every request settles, always. Each case of the issue is a named regression test
 * here; they must survive the engine unification.
 */
import { of } from 'rxjs';
import { Batcher } from '../lib';
import { ManualScheduler } from './helpers/manualScheduler';
import { deferred, type Deferred } from './helpers/recording';

/** Lets promise callbacks (and the engine's reactions to them) run. */
async function settleMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('issue 14 case 1: a full queued batch that loses a request', () => {
  it.each(['abort', 'timeout'] as const)('dispatches the rest when the running batch finishes (%s)', async (how) => {
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
