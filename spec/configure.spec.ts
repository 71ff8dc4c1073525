import { Batcher, QueueFullError } from '../lib';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';
import { ManualScheduler } from './helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from './helpers/recording';

/** A batcher on a manual clock whose batches wait until the test answers them. */
function held(options: { maxBatchSize: number; maxDelayMs?: number; maxConcurrentBatches?: number; maxQueueSize?: number }) {
  const scheduler = new ManualScheduler();
  const batches: { inputs: number[]; at: number; done: Deferred<number[]> }[] = [];
  const batcher = new Batcher<number, number>({
    name: 'tuned',
    scheduler,
    ...options,
    runBatch: (inputs) => {
      const done = deferred<number[]>();
      batches.push({ inputs: [...inputs], at: scheduler.now(), done });
      return done.promise;
    },
  });
  const answer = (i: number): void => batches[i].done.resolve(batches[i].inputs.map((x) => x * 10));
  return { scheduler, batches, batcher, answer };
}

describe('configure(): retuning at run time', () => {
  it('a bigger maxBatchSize applies to the next batch; nothing waiting is lost or reordered', async () => {
    const { scheduler, batches, batcher, answer } = held({ maxBatchSize: 2, maxDelayMs: 100 });
    const calls = Array.from({ length: 7 }, (_, i) => outcome(batcher.run(i)));
    await settleMicrotasks();
    expect(batches.map((b) => b.inputs)).toEqual([[0, 1]]); // full at 2; 5 wait for the slot
    batcher.configure({ maxBatchSize: 8 });
    answer(0);
    await settleMicrotasks();
    // Five wait, under the new maxBatchSize of 8: not full, so they wait out the window their
    // oldest opened (100 ms), then go as one batch.
    expect(batches).toHaveLength(1);
    scheduler.advance(100);
    expect(batches.map((b) => b.inputs)).toEqual([[0, 1], [2, 3, 4, 5, 6]]);
    answer(1);
    await settleMicrotasks();
    expect(calls.map((c) => c.value)).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(batcher.stats().settings).toEqual({ maxBatchSize: 8, maxDelayMs: 100, maxConcurrentBatches: 1, maxQueueSize: Infinity, maxBatchWeight: Infinity, agingMs: 1000 });
  });

  it('a smaller maxBatchSize makes a waiting queue full at once', async () => {
    const { batches, batcher, answer } = held({ maxBatchSize: 10, maxDelayMs: 100 });
    const calls = [1, 2, 3].map((x) => batcher.run(x));
    await settleMicrotasks();
    expect(batches).toHaveLength(0); // waiting for its window
    batcher.configure({ maxBatchSize: 2 });
    expect(batches.map((b) => b.inputs)).toEqual([[1, 2]]);
    answer(0);
    await settleMicrotasks();
    expect(batches).toHaveLength(1); // [3] waits for its own window, counted from its arrival
    await expect(Promise.race([calls[0], calls[1]])).resolves.toBe(10);
  });

  it('a shorter maxDelayMs re-arms an open window from its oldest request; a longer one holds it longer', async () => {
    const { scheduler, batches, batcher, answer } = held({ maxBatchSize: 10, maxDelayMs: 100 });
    void batcher.run(1);
    scheduler.advance(30);
    batcher.configure({ maxDelayMs: 40 });
    scheduler.advance(9);
    expect(batches).toHaveLength(0);
    scheduler.advance(1); // 40 ms after the request, not after configure()
    expect(batches.map((b) => [b.inputs, b.at])).toEqual([[[1], 40]]);
    answer(0);
    await settleMicrotasks();
    batcher.configure({ maxDelayMs: 200 });
    void batcher.run(2);
    scheduler.advance(199);
    expect(batches).toHaveLength(1);
    scheduler.advance(1);
    expect(batches[1].inputs).toEqual([2]);
  });

  it('more slots start waiting batches at once; fewer slots let running batches finish', async () => {
    const { batches, batcher, answer } = held({ maxBatchSize: 1 });
    const calls = [1, 2, 3, 4].map((x) => outcome(batcher.run(x)));
    await settleMicrotasks();
    expect(batches).toHaveLength(1);
    batcher.configure({ maxConcurrentBatches: 3 });
    expect(batches).toHaveLength(3);
    expect(batcher.stats()).toMatchObject({ batchesInFlight: 3, queued: 1 });
    batcher.configure({ maxConcurrentBatches: 1 });
    answer(0);
    await settleMicrotasks();
    expect(batches).toHaveLength(3); // two still run, over the new limit of one: no new batch
    answer(1);
    answer(2);
    await settleMicrotasks();
    expect(batches).toHaveLength(4);
    answer(3);
    await settleMicrotasks();
    expect(calls.map((c) => c.value)).toEqual([10, 20, 30, 40]);
  });

  it('a lower maxQueueSize refuses new requests and keeps the ones waiting', async () => {
    const { batches, batcher, answer } = held({ maxBatchSize: 1 });
    const calls = [1, 2, 3].map((x) => outcome(batcher.run(x)));
    batcher.configure({ maxQueueSize: 1 });
    const refused = await batcher.run(4).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect(refused).toMatchObject({ limit: 1 });
    for (let i = 0; i < 3; i++) {
      await settleMicrotasks();
      answer(i);
    }
    await settleMicrotasks();
    expect(calls.map((c) => c.value)).toEqual([10, 20, 30]);
    expect(batches).toHaveLength(3);
  });

  it('checks like the constructor, names what is fixed, and changes nothing on a bad value', () => {
    const { batcher } = held({ maxBatchSize: 4 });
    expect(() => batcher.configure({ maxBatchSize: 0 })).toThrow('[rx-batcher] "tuned": `maxBatchSize` must be an integer ≥ 1, got 0 (number).');
    expect(() => batcher.configure({ timeoutMs: 5 } as never)).toThrow(
      '[rx-batcher] "tuned": configure(options): `timeoutMs` is fixed at construction (what can change: maxBatchSize, maxDelayMs, maxConcurrentBatches, maxQueueSize, maxBatchWeight, agingMs, latencyTarget, isolateFailures). Nothing was changed.',
    );
    expect(() => batcher.configure({ batchSize: 5 } as never)).toThrow('configure(options): `batchSize`: unknown option; did you mean `maxBatchSize`?');
    expect(() => batcher.configure(null as never)).toThrow(TypeError);
    expect(() => batcher.configure({ maxBatchWeight: 10 })).toThrow('`maxBatchWeight` needs `weigh`');
    expect(batcher.stats().settings.maxBatchSize).toBe(4);
  });

  it('a worker retunes too, and a producer can change its maxQueueSize', async () => {
    const t = memoryTransport();
    const sizes: number[] = [];
    const worker = await serveBatches<number, number>(t, 'tune', (xs) => (sizes.push(xs.length), xs.map((x) => x + 1)), { maxBatchSize: 2, maxDelayMs: 5 });
    const p = remoteBatcher<number, number>(t, 'tune');
    await expect(Promise.all([1, 2, 3, 4].map((x) => p.run(x)))).resolves.toEqual([2, 3, 4, 5]);
    expect(Math.max(...sizes)).toBe(2);
    worker.configure({ maxBatchSize: 8 });
    expect(worker.stats().settings.maxBatchSize).toBe(8);
    sizes.length = 0;
    await expect(Promise.all([1, 2, 3, 4, 5, 6].map((x) => p.run(x)))).resolves.toEqual([2, 3, 4, 5, 6, 7]);
    expect(sizes).toEqual([6]);
    expect(() => worker.configure({ maxQueueSize: 3 } as never)).toThrow('configure(options): `maxQueueSize`: unknown option');
    p.configure({ maxQueueSize: 1 });
    const [first, second] = await Promise.allSettled([p.run(1), p.run(2)]);
    expect(first).toEqual({ status: 'fulfilled', value: 2 });
    expect((second as PromiseRejectedResult).reason).toBeInstanceOf(QueueFullError);
    expect(() => p.configure({ maxBatchSize: 3 } as never)).toThrow('configure(options): `maxBatchSize`: unknown option');
    await p.stop();
    await worker.stop();
  });
});
