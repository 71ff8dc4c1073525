import { EMPTY, NEVER, Observable, of } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Batcher, batchMap, batchMapSettled, type BatchContext, type DispatchReason } from '../lib';

let testScheduler: TestScheduler;

beforeEach(() => {
  testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
});

/** Records each batch as [virtual time, reason, inputs]. */
function recorder<I, O>(body: (xs: readonly I[], ctx: BatchContext) => Observable<O[]>) {
  const log: [number, DispatchReason, I[]][] = [];
  const runBatch = (xs: readonly I[], ctx: BatchContext) => {
    log.push([testScheduler.now(), ctx.reason, [...xs]]);
    return body(xs, ctx);
  };
  return { log, runBatch };
}

describe('batchMap (marbles)', () => {
  it('flushes at maxBatchSize, after maxDelayMs, and on source completion', () => {
    testScheduler.run(({ hot, cold, expectObservable }) => {
      const source = hot('-a-b-c---d------e-|');
      const { log, runBatch } = recorder<string, string>((xs) => cold('--(x|)', { x: xs.map((s) => s.toUpperCase()) }));
      const out = source.pipe(batchMap(runBatch, { maxBatchSize: 3, maxDelayMs: 5 }));
      // a..c fill a batch at 5 (runs 2 frames); d waits 5 frames: 9 → 14; e is drained at 18
      expectObservable(out).toBe('-------(ABC)----D---(E|)');
      testScheduler.flush();
      expect(log).toEqual([
        [5, 'full', ['a', 'b', 'c']],
        [14, 'delay', ['d']],
        [18, 'drain', ['e']],
      ]);
    });
  });

  it('seals late: while the model is busy, values queue and go out as full batches when the slot frees', () => {
    testScheduler.run(({ hot, cold, expectObservable }) => {
      // runBatch takes 10 frames; maxDelayMs 2 would cut c..g into tiny batches if sealing ignored the busy model
      const source = hot('ab--cdefg-----------------|');
      const { log, runBatch } = recorder<string, string>((xs) => cold('----------(x|)', { x: [...xs] }));
      const out = source.pipe(batchMap(runBatch, { maxBatchSize: 3, maxDelayMs: 2 }));
      expectObservable(out).toBe('------------(ab)------(cde)-----(fg|)', { a: 'a', b: 'b', c: 'c', d: 'd', e: 'e', f: 'f', g: 'g' });
      testScheduler.flush();
      expect(log).toEqual([
        [2, 'delay', ['a', 'b']],
        [12, 'full', ['c', 'd', 'e']],
        [22, 'delay', ['f', 'g']],
      ]);
    });
  });

  it('keeps source order when a later batch finishes first (maxConcurrentBatches > 1)', () => {
    testScheduler.run(({ hot, cold, expectObservable }) => {
      const source = hot('-abcd-|');
      const durations: Record<string, string> = { a: '------(x|)', c: '-(x|)' };
      const runBatch = (xs: readonly string[]) => cold(durations[xs[0]], { x: xs.map((s) => s.toUpperCase()) });
      const out = source.pipe(batchMap(runBatch, { maxBatchSize: 2, maxDelayMs: 1, maxConcurrentBatches: 2 }));
      // [a,b] runs 2..8; [c,d] runs 4..5 but waits for [a,b]
      expectObservable(out).toBe('--------(ABCD|)');
    });
  });

  it('completes at once on an empty source without calling runBatch, and never completes on NEVER', () => {
    testScheduler.run(({ expectObservable }) => {
      const calls: unknown[] = [];
      const runBatch = (xs: readonly number[]) => {
        calls.push(xs);
        return xs;
      };
      expectObservable(EMPTY.pipe(batchMap(runBatch, { maxBatchSize: 2, maxDelayMs: 5 }))).toBe('|');
      expectObservable(NEVER.pipe(batchMap(runBatch, { maxBatchSize: 2, maxDelayMs: 5 }))).toBe('-');
      testScheduler.flush();
      expect(calls).toEqual([]);
    });
  });

  it('forwards a source error at once and unsubscribes the running batch', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('-a-b-#');
      const inner = cold('-------(x|)', { x: ['A'] });
      const out = source.pipe(batchMap(() => inner, { maxBatchSize: 1 }));
      expectObservable(out).toBe('-----#');
      // b waited for the busy slot, so it never reached runBatch
      expectSubscriptions(inner.subscriptions).toBe('-^---!');
    });
  });

  it('errors the output when an item fails, as RxJS operators do, and tears down the source', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('-a-b-c-|');
      const runBatch = (xs: readonly string[]) => cold('-(x|)', { x: xs.map((s) => (s === 'b' ? new Error('bad b') : s)) });
      const out = source.pipe(batchMap(runBatch, { maxBatchSize: 1 }));
      expectObservable(out).toBe('--a-#', { a: 'a' }, new Error('bad b'));
      expectSubscriptions(source.subscriptions).toBe('^---!');
    });
  });

  it('batchMapSettled keeps the pipeline alive and emits every settlement in order', () => {
    testScheduler.run(({ hot, cold, expectObservable }) => {
      const source = hot('-a-b-c-|');
      const runBatch = (xs: readonly string[]) =>
        xs[0] === 'b' ? cold<string[]>('-#', undefined, new Error('model crashed')) : cold('-(x|)', { x: xs.map((s) => s.toUpperCase()) });
      const out = source.pipe(batchMapSettled(runBatch, { maxBatchSize: 1 }));
      expectObservable(out).toBe('--a-b-c|', {
        a: { status: 'fulfilled', value: 'A', id: 1, input: 'a' },
        b: { status: 'rejected', reason: new Error('model crashed'), id: 2, input: 'b' },
        c: { status: 'fulfilled', value: 'C', id: 3, input: 'c' },
      });
    });
  });

  it('unsubscribing the output cancels the running batch and the open window', () => {
    testScheduler.run(({ hot, cold, expectObservable, expectSubscriptions }) => {
      const source = hot('-a---b----');
      const inner = cold('----(x|)', { x: ['A'] });
      const calls: string[][] = [];
      const out = source.pipe(
        batchMap((xs: readonly string[]) => {
          calls.push([...xs]);
          return inner;
        }, { maxBatchSize: 2, maxConcurrentBatches: 1, maxDelayMs: 3 }),
      );
      // a's window closes at 4 and its batch runs 4..8; b (at 5) waits for the slot
      expectObservable(out, '^-----!').toBe('-');
      expectSubscriptions(inner.subscriptions).toBe('----^-!');
      testScheduler.flush();
      expect(calls).toEqual([['a']]);
    });
  });

  it('handles a synchronous source: full batches, then the rest when it completes', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const { log, runBatch } = recorder<number, number>((xs) => of(xs.map((x) => x * 10)));
      const out = cold('(abc|)', { a: 1, b: 2, c: 3 }).pipe(batchMap(runBatch, { maxBatchSize: 2, maxDelayMs: 50 }));
      expectObservable(out).toBe('(xyz|)', { x: 10, y: 20, z: 30 });
      testScheduler.flush();
      expect(log).toEqual([
        [0, 'full', [1, 2]],
        [0, 'drain', [3]],
      ]);
    });
  });
});

describe('Batcher (marbles, with the scheduler option)', () => {
  it('dispatches for every reason: full, delay, flush and drain', () => {
    testScheduler.run(({ cold }) => {
      const { log, runBatch } = recorder<string, string>((xs) => cold('-(x|)', { x: xs.map((s) => s.toUpperCase()) }));
      const batcher = new Batcher<string, string>({ runBatch, maxBatchSize: 2, maxDelayMs: 4, scheduler: testScheduler });
      const at = (frame: number, work: () => void) => testScheduler.schedule(work, frame);
      const seen: [number, string][] = [];
      const submit = (x: string) => batcher.run$(x).subscribe((y) => seen.push([testScheduler.now(), y]));
      at(0, () => { submit('a'); submit('b'); }); // full at 0
      at(1, () => submit('c'));                    // window 1 → 5
      at(10, () => { submit('d'); batcher.flush(); });
      at(20, () => { submit('e'); void batcher.stop({ drain: true }); });
      testScheduler.flush();
      expect(log).toEqual([
        [0, 'full', ['a', 'b']],
        [5, 'delay', ['c']],
        [10, 'flush', ['d']],
        [20, 'drain', ['e']],
      ]);
      expect(batcher.stats().dispatchReasons).toEqual({ full: 1, delay: 1, flush: 1, drain: 1, target: 0 });
      expect(seen).toEqual([[1, 'A'], [1, 'B'], [6, 'C'], [11, 'D'], [21, 'E']]);
    });
  });

  it('times out on the virtual clock, and an idle batcher schedules nothing', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const runBatch = (xs: readonly number[]) => cold('----------(x|)', { x: [...xs] });
      const batcher = new Batcher<number, number>({ runBatch, maxBatchSize: 1, timeoutMs: 5, scheduler: testScheduler });
      expectObservable(batcher.run$(1)).toBe('-----#', undefined, expect.objectContaining({ name: 'RequestTimeoutError', phase: 'running' }));
      testScheduler.flush();
      expect(testScheduler.actions).toEqual([]);
    });
  });
});

describe('batchMap deadlines (marbles)', () => {
  it('applies timeoutMs to each value: batchMapSettled reports the timeout and keeps going', () => {
    testScheduler.run(({ hot, cold, expectObservable }) => {
      const source = hot('-a-b|');
      const runBatch = (xs: readonly string[]) => cold(xs[0] === 'a' ? '--------(x|)' : '-(x|)', { x: xs.map((s) => s.toUpperCase()) });
      const out = source.pipe(batchMapSettled(runBatch, { maxBatchSize: 1, maxConcurrentBatches: 2, timeoutMs: 5 }));
      expectObservable(out).toBe('------(ab|)', {
        a: { status: 'rejected', reason: expect.objectContaining({ name: 'RequestTimeoutError', timeoutMs: 5, phase: 'running' }), id: 1, input: 'a' },
        b: { status: 'fulfilled', value: 'B', id: 2, input: 'b' },
      });
    });
  });
});
