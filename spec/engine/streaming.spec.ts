/**
 * Streaming outputs, whole-batch (lib/core/streamRunner.ts through `StreamingBatcher`): each
 * batch's `runBatch` returns a stream of steps, one slot per input; chunks reach their callers
 * as they come. Virtual time only: a manual clock for windows and deadlines, steps pushed by
 * the test (an Observable through a Subject, or an AsyncIterable through a StepFeed).
 */
import { firstValueFrom, Observable, Subject, toArray } from 'rxjs';
import {
  Batcher,
  batchMap,
  BatchResultError,
  BatcherStoppedError,
  done,
  last,
  QueueFullError,
  RequestTimeoutError,
  skip,
  StreamBufferFullError,
  StreamingBatcher,
  type BatchContext,
  type Settlement,
  type StreamingBatcherStats,
} from '../../lib';
import { ManualScheduler } from '../helpers/manualScheduler';
import { outcome, settleMicrotasks } from '../helpers/recording';
import { StepFeed } from '../helpers/stepFeed';

type Slot = string | symbol | Error | object;

/** A streaming batcher whose batches are Subjects of steps the test pushes. */
function observableBatcher(options: Record<string, unknown> = {}) {
  const scheduler = new ManualScheduler();
  const batches: { inputs: string[]; ctx: BatchContext; steps: Subject<ArrayLike<Slot>>; unsubscribed: boolean }[] = [];
  const batcher = new StreamingBatcher<string, string>({
    maxBatchSize: 4,
    scheduler,
    runBatch: (inputs, ctx) => {
      const steps = new Subject<ArrayLike<Slot>>();
      const record = { inputs: [...inputs], ctx, steps, unsubscribed: false };
      batches.push(record);
      return new Observable<ArrayLike<Slot>>((subscriber) => {
        const sub = steps.subscribe(subscriber);
        return () => {
          record.unsubscribed = true;
          sub.unsubscribe();
        };
      }) as never;
    },
    ...options,
  });
  return { scheduler, batches, batcher };
}

/** A streaming batcher whose batches are StepFeeds (AsyncIterables) the test pushes. */
function iterableBatcher(options: Record<string, unknown> = {}) {
  const scheduler = new ManualScheduler();
  const batches: { inputs: string[]; ctx: BatchContext; feed: StepFeed<string> }[] = [];
  const batcher = new StreamingBatcher<string, string>({
    maxBatchSize: 4,
    scheduler,
    runBatch: (inputs, ctx) => {
      const feed = new StepFeed<string>();
      batches.push({ inputs: [...inputs], ctx, feed });
      return feed as never;
    },
    ...options,
  });
  return { scheduler, batches, batcher };
}

/** Subscribes to a stream and records what it delivers. */
function watch<C>(stream: Observable<C>) {
  const seen: { chunks: C[]; completed: boolean; error: unknown } = { chunks: [], completed: false, error: undefined };
  const subscription = stream.subscribe({
    next: (c) => seen.chunks.push(c),
    complete: () => (seen.completed = true),
    error: (e: unknown) => (seen.error = e),
  });
  return Object.assign(seen, { subscription });
}

/** Every request submitted is in exactly one place. */
function addsUp(s: StreamingBatcherStats): void {
  expect(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected).toBe(s.submitted);
}

describe('whole-batch streaming: the steps', () => {
  it('delivers each slot to its own caller: chunks in order, skip, done, last(chunk), and an Error fails that caller alone', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((x) => watch(batcher.stream(x)));
    scheduler.advance(0);
    expect(batches.map((x) => x.inputs)).toEqual([['a', 'b', 'c', 'd']]);
    const steps = batches[0].steps;
    const boom = new RangeError('item c failed');
    steps.next(['a1', skip, 'c1', 'd1']);
    steps.next(['a2', 'b1', boom, last('d2')]);
    expect([a.chunks, b.chunks, c.chunks, d.chunks]).toEqual([['a1', 'a2'], ['b1'], ['c1'], ['d1', 'd2']]);
    expect([c.error, d.completed]).toEqual([boom, true]);
    steps.next([done, 'b2', 'ignored: c failed', 'ignored: d finished']);
    expect([a.completed, b.completed, b.chunks]).toEqual([true, false, ['b1', 'b2']]);
    expect(batcher.stats()).toMatchObject({ succeeded: 2, failed: 1, inFlight: 1, batchesInFlight: 1, chunks: 7, steps: 3 });
    steps.complete(); // the stream ending finishes every item still going
    expect(b.completed).toBe(true);
    const stats = batcher.stats();
    expect(stats).toMatchObject({ succeeded: 3, failed: 1, inFlight: 0, batchesInFlight: 0, failedBatches: 0 });
    addsUp(stats);
  });

  it('pulls an AsyncIterable one step at a time; run() resolves with the collected chunks', async () => {
    const { scheduler, batches, batcher } = iterableBatcher();
    const runs = ['x', 'y'].map((input) => outcome(batcher.run(input)));
    scheduler.advance(0);
    const feed = batches[0].feed;
    expect(feed.pulls).toBe(1); // the first step is asked for at once, the next only after it
    feed.push(['x1', 'y1']);
    await settleMicrotasks();
    expect(feed.pulls).toBe(2);
    feed.push([last('x2'), 'y2']);
    feed.push(['ignored', 'y3']);
    feed.end();
    await settleMicrotasks();
    expect(runs.map((r) => r.value)).toEqual([['x1', 'x2'], ['y1', 'y2', 'y3']]);
    expect(feed.returned).toBe(0); // it ended by itself
  });

  it('frees the slot as soon as every item is finished, and stops the stream (return() on the iterator)', async () => {
    const { scheduler, batches, batcher } = iterableBatcher({ maxBatchSize: 2 });
    const first = ['a', 'b'].map((x) => outcome(batcher.run(x)));
    const later = outcome(batcher.run('c'));
    scheduler.advance(0);
    batches[0].feed.push([last('a1'), done]);
    await settleMicrotasks();
    expect(first.map((r) => r.value)).toEqual([['a1'], []]);
    expect(batches[0].feed.returned).toBe(1);
    expect(batches.map((b) => b.inputs)).toEqual([['a', 'b'], ['c']]); // the next batch got the slot
    expect(batches[0].ctx.signal.aborted).toBe(false); // finished, not abandoned
    batches[1].feed.push([last('c1')]);
    await settleMicrotasks();
    expect(later.value).toEqual(['c1']);
    expect(batcher.stats()).toMatchObject({ abandonedBatches: 0, batches: 2, succeeded: 3 });
  });

  it('the stream failing fails every item still going with its error; items already finished keep their outcome; the batcher keeps serving', async () => {
    const { scheduler, batches, batcher } = iterableBatcher({ maxBatchSize: 2 });
    const [a, b] = ['a', 'b'].map((x) => outcome(batcher.run(x)));
    const c = outcome(batcher.run('c'));
    scheduler.advance(0);
    batches[0].feed.push([last('a1'), 'b1']);
    const down = new Error('model down');
    batches[0].feed.fail(down);
    await settleMicrotasks();
    expect([a.value, b.error]).toEqual([['a1'], down]);
    expect(batcher.stats()).toMatchObject({ failedBatches: 1, succeeded: 1, failed: 1 });
    batches[1].feed.end();
    await settleMicrotasks();
    expect(c.value).toEqual([]);
  });

  it('a step of the wrong size, or not an array, fails the batch with a BatchResultError', async () => {
    const { scheduler, batches, batcher } = observableBatcher({ maxBatchSize: 2 });
    const short = ['a', 'b'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    batches[0].steps.next(['only one']);
    await settleMicrotasks();
    for (const r of short) expect(r.error).toBeInstanceOf(BatchResultError);
    expect((short[0].error as Error).message).toMatch(/a step had 1 slots for 2 inputs/);
    const notArray = outcome(batcher.run('c'));
    scheduler.advance(0);
    batches[1].steps.next('abc' as never);
    await settleMicrotasks();
    expect((notArray.error as Error).message).toMatch(/each step must be an array with one slot per input/);
    expect(batcher.stats().failedBatches).toBe(2);
  });

  it('runBatch throwing, or returning something that is not a stream, fails the batch', async () => {
    const thrown = new Error('no GPU');
    const throwing = new StreamingBatcher<string, string>({ maxBatchSize: 2, runBatch: () => { throw thrown; } });
    await expect(throwing.run('a')).rejects.toBe(thrown);
    const wrong = new StreamingBatcher<string, string>({ maxBatchSize: 2, runBatch: (xs) => xs.map((x) => [x]) as never });
    await expect(wrong.run('a')).rejects.toThrow(/must return an AsyncIterable \(e\.g\. an async generator\) or an Observable of steps.*returned an array of length 1/);
  });

  it('works with a real async generator, and its finally runs when the batch ends', async () => {
    const cleanups: number[] = [];
    const batcher = new StreamingBatcher<number, number>({
      maxBatchSize: 8,
      async *runBatch(ns, ctx) {
        try {
          for (let i = 0; ; i++) yield ns.map((n) => (i < n ? n * 10 + i : i === n ? done : skip));
        } finally {
          cleanups.push(ctx.batchId);
        }
      },
    });
    expect(await Promise.all([1, 3, 2].map((n) => batcher.run(n)))).toEqual([[10], [30, 31, 32], [20, 21]]);
    await settleMicrotasks();
    expect(cleanups).toEqual([1]); // an endless generator, stopped once every item was done
  });
});

describe('stream(): an Observable that is also an AsyncIterable', () => {
  it('is cold: nothing is sent until it is subscribed, and each subscription is a request of its own', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const stream = batcher.stream('a');
    expect(stream).toBeInstanceOf(Observable);
    expect(typeof stream[Symbol.asyncIterator]).toBe('function');
    scheduler.advance(10);
    expect(batches).toHaveLength(0);
    const [one, two] = [watch(stream), watch(stream)];
    scheduler.advance(0);
    expect(batches[0].inputs).toEqual(['a', 'a']);
    batches[0].steps.next(['1', '2']);
    expect([one.chunks, two.chunks]).toEqual([['1'], ['2']]);
  });

  it('for await reads every chunk, then ends', async () => {
    const batcher = new StreamingBatcher<string, string>({
      maxBatchSize: 4,
      async *runBatch(words) {
        for (let i = 0; i < 6; i++) yield words.map((w) => (i < w.length ? w[i] : done));
      },
    });
    const letters: string[] = [];
    for await (const letter of batcher.stream('hello')) letters.push(letter);
    expect(letters).toEqual(['h', 'e', 'l', 'l', 'o']);
    expect(await firstValueFrom(batcher.stream('abc').pipe(toArray()))).toEqual(['a', 'b', 'c']);
  });

  it('unsubscribing stops delivery at once and drops the item; when every caller has gone ctx.signal aborts, the stream is stopped and the slot frees', async () => {
    const { scheduler, batches, batcher } = iterableBatcher({ maxBatchSize: 2 });
    const [a, b] = ['a', 'b'].map((x) => watch(batcher.stream(x)));
    const waiting = watch(batcher.stream('c'));
    scheduler.advance(0);
    const first = batches[0];
    first.feed.push(['a1', 'b1']);
    await settleMicrotasks();
    a.subscription.unsubscribe();
    first.feed.push(['a2', 'b2']);
    await settleMicrotasks();
    expect([a.chunks, b.chunks]).toEqual([['a1'], ['b1', 'b2']]);
    expect(first.ctx.signal.aborted).toBe(false); // b still reads
    expect(batcher.stats()).toMatchObject({ cancelled: 1, inFlight: 1 });
    b.subscription.unsubscribe();
    expect(first.ctx.signal.aborted).toBe(true);
    expect(first.ctx.signal.reason).toMatchObject({ name: 'AbortError' });
    await settleMicrotasks();
    expect(first.feed.returned).toBe(1);
    expect(batches.map((x) => x.inputs)).toEqual([['a', 'b'], ['c']]); // the slot went to c at once
    expect(batcher.stats()).toMatchObject({ cancelled: 2, abandonedBatches: 1, batchesInFlight: 1 });
    batches[1].feed.push([last('c1')]);
    await settleMicrotasks();
    expect(waiting).toMatchObject({ chunks: ['c1'], completed: true });
    expect([a.completed, b.completed, a.error, b.error]).toEqual([false, false, undefined, undefined]);
    addsUp(batcher.stats());
  });

  it('leaving a for await loop early cancels the request and drops its item from the batch', async () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const got: string[] = [];
    const reading = (async () => {
      for await (const chunk of batcher.stream('a')) {
        got.push(chunk);
        if (got.length === 2) break;
      }
    })();
    const neighbour = watch(batcher.stream('b'));
    await settleMicrotasks();
    scheduler.advance(0);
    const steps = batches[0].steps;
    steps.next(['a1', 'b1']);
    await settleMicrotasks();
    steps.next(['a2', 'b2']);
    await reading;
    steps.next(['a3', 'b3']);
    expect(got).toEqual(['a1', 'a2']);
    expect(neighbour.chunks).toEqual(['b1', 'b2', 'b3']);
    expect(batcher.stats()).toMatchObject({ cancelled: 1, inFlight: 1 });
  });

  it('aborting its signal errors the stream with the reason, at once', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const controller = new AbortController();
    const a = watch(batcher.stream('a', { signal: controller.signal }));
    scheduler.advance(0);
    batches[0].steps.next(['a1']);
    const reason = new Error('client went away');
    controller.abort(reason);
    batches[0].steps.next(['a2']);
    expect(a).toMatchObject({ chunks: ['a1'], error: reason });
    expect(batches[0].ctx.signal.aborted).toBe(true);
  });

  it('timeoutMs bounds the whole stream: the caller gets RequestTimeoutError mid-stream, its neighbour goes on', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const hasty = watch(batcher.stream('a', { timeoutMs: 25 }));
    const patient = watch(batcher.stream('b'));
    scheduler.advance(0);
    for (let t = 1; t <= 4; t++) {
      scheduler.advance(10);
      batches[0].steps.next([`a${t}`, `b${t}`]);
    }
    expect(hasty.chunks).toEqual(['a1', 'a2']);
    expect(hasty.error).toBeInstanceOf(RequestTimeoutError);
    expect(hasty.error).toMatchObject({ phase: 'running', timeoutMs: 25 });
    expect(patient.chunks).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(batches[0].ctx.signal.aborted).toBe(false);
  });

  it('run$() emits the collected chunks once; unsubscribing first cancels the request', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const got: string[][] = [];
    batcher.run$('a').subscribe((chunks) => got.push(chunks));
    const leaving = batcher.run$('b').subscribe();
    scheduler.advance(0);
    leaving.unsubscribe();
    batches[0].steps.next(['a1', 'b1']);
    batches[0].steps.next([last('a2'), 'b2']);
    expect(got).toEqual([['a1', 'a2']]);
    expect(batcher.stats()).toMatchObject({ succeeded: 1, cancelled: 1 });
  });

  it('refuses bad per-call options as errors of the stream, counted as rejected', async () => {
    const { batcher } = observableBatcher();
    await expect(firstValueFrom(batcher.stream('a', { maxBufferedChunks: 0 }))).rejects.toThrow(RangeError);
    await expect(firstValueFrom(batcher.stream('a', { maxBufferedChunks: 'lots' as never }))).rejects.toThrow(/`maxBufferedChunks` must be an integer ≥ 1 or Infinity.*"lots"/);
    await expect(firstValueFrom(batcher.stream('a', { timeout: 5 } as never))).rejects.toThrow(/did you mean `timeoutMs`/);
    expect(batcher.stats()).toMatchObject({ submitted: 3, rejected: 3 });
  });

  it('results$ carries each call once: run() with its chunks, stream() with none kept', () => {
    const { scheduler, batches, batcher } = observableBatcher();
    const settled: Settlement<string, string[]>[] = [];
    batcher.results$.subscribe((s) => settled.push(s));
    void batcher.run('a');
    watch(batcher.stream('b'));
    scheduler.advance(0);
    batches[0].steps.next(['a1', 'b1']);
    batches[0].steps.complete();
    expect(settled.map((s) => [s.input, s.status === 'fulfilled' ? s.value : s.reason])).toEqual([['a', ['a1']], ['b', []]]);
  });
});

describe('backpressure: a slow reader never holds its batch back', () => {
  /** Reads with `for await`, taking `perChunkMs` of virtual time per chunk. */
  function slowReader(stream: AsyncIterable<string>, scheduler: ManualScheduler, perChunkMs: number) {
    const state = { read: [] as string[], error: undefined as unknown, ended: false };
    void (async () => {
      try {
        for await (const chunk of stream) {
          state.read.push(chunk);
          await new Promise<void>((resolve) => scheduler.schedule(() => resolve(), perChunkMs));
        }
        state.ended = true;
      } catch (error) {
        state.error = error;
      }
    })();
    return state;
  }

  async function tick(scheduler: ManualScheduler, ms: number): Promise<void> {
    await settleMicrotasks();
    scheduler.advance(ms);
    await settleMicrotasks();
  }

  it('a for await reader more than maxBufferedChunks behind gets StreamBufferFullError and leaves the batch; its neighbour reads on at full speed', async () => {
    const { scheduler, batches, batcher } = observableBatcher({ maxBufferedChunks: 3 });
    // The model makes a chunk per item every 10 ms; the slow reader needs 50 ms per chunk.
    const slow = slowReader(batcher.stream('slow'), scheduler, 50);
    const fast = slowReader(batcher.stream('fast'), scheduler, 1);
    await tick(scheduler, 0);
    for (let t = 1; t <= 12; t++) {
      await tick(scheduler, 10);
      batches[0].steps.next([`s${t}`, `f${t}`]);
      if (t === 4) expect(batcher.stats().inFlight).toBe(2);
      if (t === 5) expect(batcher.stats()).toMatchObject({ inFlight: 1, cancelled: 1 }); // ended at once, while its reader was still busy
    }
    for (let i = 0; i < 6; i++) await tick(scheduler, 50);
    // s1 went straight to the waiting reader, which then took 50 ms over it: s2, s3 and s4
    // filled the buffer, and s5 (at 50 ms) was one too many.
    expect(slow.error).toBeInstanceOf(StreamBufferFullError);
    expect(slow.error).toMatchObject({ limit: 3, batcher: 'batcher' });
    expect(slow.read).toEqual(['s1', 's2', 's3', 's4']); // what was buffered is still read, then the error
    expect(fast.read).toEqual(Array.from({ length: 12 }, (_, i) => `f${i + 1}`));
    expect(batcher.stats()).toMatchObject({ cancelled: 1, inFlight: 1 });
    batches[0].steps.complete();
    await tick(scheduler, 10);
    expect(fast.ended).toBe(true);
  });

  it('a reader within the bound loses nothing, however long it lags; an Observable subscriber is never buffered or cut', async () => {
    const { scheduler, batches, batcher } = observableBatcher({ maxBufferedChunks: 5 });
    const reader = slowReader(batcher.stream('a'), scheduler, 20);
    const subscriber = watch(batcher.stream('b'));
    await tick(scheduler, 0);
    for (let t = 1; t <= 5; t++) batches[0].steps.next([`a${t}`, `b${t}`]); // a burst of 5: at the bound, not over
    batches[0].steps.complete();
    for (let i = 0; i < 8; i++) await tick(scheduler, 20);
    expect(reader).toMatchObject({ read: ['a1', 'a2', 'a3', 'a4', 'a5'], ended: true, error: undefined });
    expect(subscriber).toMatchObject({ chunks: ['b1', 'b2', 'b3', 'b4', 'b5'], completed: true });
  });
});

describe('stop() and streams in progress', () => {
  it('a plain stop rejects what is queued, lets streams in progress finish (their ctx.signal aborts), and resolves when they have', async () => {
    const { scheduler, batches, batcher } = observableBatcher({ maxBatchSize: 1 });
    const running = watch(batcher.stream('a'));
    const queued = watch(batcher.stream('b'));
    scheduler.advance(0);
    batches[0].steps.next(['a1']);
    const stopped = outcome(batcher.stop());
    expect(queued.error).toBeInstanceOf(BatcherStoppedError);
    expect(batches[0].ctx.signal.aborted).toBe(true);
    expect(batches[0].ctx.signal.reason).toBeInstanceOf(BatcherStoppedError);
    batches[0].steps.next(['a2']); // still delivered
    await settleMicrotasks();
    expect(stopped.settled).toBe(false);
    batches[0].steps.complete();
    await settleMicrotasks();
    expect(running).toMatchObject({ chunks: ['a1', 'a2'], completed: true });
    expect(stopped.settled).toBe(true);
    await expect(firstValueFrom(batcher.stream('late'))).rejects.toBeInstanceOf(BatcherStoppedError);
  });

  it('stop({ drain: true }) streams what is queued too', async () => {
    const { scheduler, batches, batcher } = observableBatcher({ maxBatchSize: 1 });
    const [a, b] = ['a', 'b'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    const stopped = outcome(batcher.stop({ drain: true }));
    batches[0].steps.next([last('a1')]);
    await settleMicrotasks();
    expect(batches).toHaveLength(2);
    batches[1].steps.next([last('b1')]);
    await settleMicrotasks();
    expect([a.value, b.value, stopped.settled]).toEqual([['a1'], ['b1'], true]);
  });

  it('maxQueueSize refuses at once with QueueFullError; running streams do not count', () => {
    const { scheduler, batcher } = observableBatcher({ maxBatchSize: 1, maxQueueSize: 1 });
    watch(batcher.stream('running'));
    scheduler.advance(0);
    const queued = watch(batcher.stream('queued'));
    const refused = watch(batcher.stream('refused'));
    expect(refused.error).toBeInstanceOf(QueueFullError);
    expect(queued.error).toBeUndefined();
  });
});

describe('options: streaming is opt-in and refused where it is not supported', () => {
  const runBatch = (): never => {
    throw new Error('unused');
  };

  it('StreamingBatcher takes exactly one of runBatch and continuous, and no dedupeBy', () => {
    const continuous = { init: () => 0, runStep: () => [] };
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, continuous } as never)).toThrow(/either `runBatch`.*or `continuous`.*not both/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2 } as never)).toThrow(/`runBatch` must be a function/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, dedupeBy: String } as never)).toThrow(/`dedupeBy` cannot be used with streaming outputs/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, continuous, weigh: () => 1 } as never)).toThrow(/`weigh` and `maxBatchWeight` are not supported with `continuous`/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, continuous: { init: () => 0 } } as never)).toThrow(/`continuous.runStep` must be a function/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, latencyTarget: { p99Ms: 20 } })).toThrow(/`latencyTarget` cannot be used with streaming outputs/);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, maxBufferedChunks: 0 })).toThrow(RangeError);
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, maxBufferedChunks: Infinity })).not.toThrow();
  });

  it('Batcher and batchMap refuse the streaming options with a pointer to StreamingBatcher', () => {
    expect(() => new Batcher({ maxBatchSize: 2, runBatch, continuous: {} } as never)).toThrow(
      /`continuous` is an option of streaming outputs, which Batcher does not have: use `new StreamingBatcher/,
    );
    expect(() => new Batcher({ maxBatchSize: 2, runBatch, streaming: true } as never)).toThrow(TypeError);
    expect(() => batchMap(runBatch, { maxBatchSize: 2, maxBufferedChunks: 4 } as never)).toThrow(/batchMap and the remote faces do not stream outputs/);
  });

  it('a plain Batcher whose runBatch returns an async generator fails its batch with a BatchResultError that says where streaming lives', async () => {
    const batcher = new Batcher<string, string>({
      maxBatchSize: 2,
      runBatch: async function* () {
        yield ['x'];
      } as never,
    });
    const error = await batcher.run('a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchResultError);
    expect((error as Error).message).toMatch(/it returned an AsyncIterable \(a stream\): for streaming outputs use `new StreamingBatcher/);
  });

  it('configure() keeps the model: a streaming batcher reconfigured still streams', async () => {
    const batcher = new StreamingBatcher<string, string>({
      maxBatchSize: 2,
      async *runBatch(xs) {
        yield xs.map((x) => last(x.toUpperCase()));
      },
    });
    batcher.configure({ maxBatchSize: 8 });
    expect(await batcher.run('a')).toEqual(['A']);
    expect(batcher.stats().settings.maxBatchSize).toBe(8);
  });
});
