/**
 * The runner (lib/core/invokeRunBatch.ts), tested directly: it calls `runBatch` once and
 * reports exactly one outcome whatever comes back. Then late result slots
 * (lib/core/lateResult.ts), through `new Batcher({ runBatch })` on a manual clock: a slot
 * holding a promise settles its own caller when it settles, and the batch keeps its slot
 * until the last such promise has.
 */
import { Observable, Subject } from 'rxjs';
import { Batcher, BatchResultError, RequestTimeoutError, type BatchContext, type BatcherStats } from '../../lib';
import { invokeRunBatch, type BatchOutcome } from '../../lib/core/invokeRunBatch';
import { CALLER_GONE, type LateResult } from '../../lib/core/lateResult';
import { ManualScheduler } from '../helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from '../helpers/recording';

const ctx = {} as BatchContext;

/** Calls the runner on inputs [1, 2] and records every outcome it reports. */
function invoke(runBatch: (inputs: readonly number[], ctx: BatchContext) => unknown) {
  const reports: ({ returned: ArrayLike<unknown> } | { failed: unknown })[] = [];
  const sink: BatchOutcome = {
    returned: (results) => reports.push({ returned: results }),
    failed: (error) => reports.push({ failed: error }),
  };
  const subscription = invokeRunBatch('runner', runBatch as never, [1, 2], ctx, sink);
  return { reports, subscription };
}

function failure(reports: ReturnType<typeof invoke>['reports']): unknown {
  expect(reports).toHaveLength(1);
  expect(reports[0]).toHaveProperty('failed');
  return (reports[0] as { failed: unknown }).failed;
}

describe('invokeRunBatch: one call, exactly one outcome', () => {
  it('accepts any array-like result synchronously: an array, a typed array, { length, 0, 1 }', () => {
    const calls: (readonly number[])[] = [];
    const results = [[10, 20], new Float32Array([1, 2]), { length: 2, 0: 'a', 1: 'b' }];
    for (const result of results) {
      const { reports } = invoke((xs) => (calls.push(xs), result));
      expect(reports).toEqual([{ returned: result }]);
      expect((reports[0] as { returned: unknown }).returned).toBe(result); // passed on as is, not copied
    }
    expect(calls).toEqual([[1, 2], [1, 2], [1, 2]]);
  });

  it('waits for a Promise, and a rejection fails the batch with its reason', async () => {
    const ok = deferred<number[]>();
    const resolved = invoke(() => ok.promise);
    expect(resolved.reports).toEqual([]);
    ok.resolve([3, 4]);
    await settleMicrotasks();
    expect(resolved.reports).toEqual([{ returned: [3, 4] }]);

    const reason = new Error('model down');
    const rejected = invoke(() => Promise.reject(reason));
    await settleMicrotasks();
    expect(failure(rejected.reports)).toBe(reason);
  });

  it('takes the first emission of an Observable and unsubscribes; an empty one is a BatchResultError', () => {
    const teardown = jest.fn();
    const source = new Subject<number[]>();
    const first = invoke(() => new Observable<number[]>((s) => (source.subscribe(s), teardown)));
    expect(first.subscription).toBeDefined();
    source.next([5, 6]);
    source.next([7, 8]);
    expect(first.reports).toEqual([{ returned: [5, 6] }]);
    expect(teardown).toHaveBeenCalledTimes(1);

    const empty = invoke(() => new Observable<number[]>((s) => s.complete()));
    const error = failure(empty.reports);
    expect(error).toBeInstanceOf(BatchResultError);
    expect((error as Error).message).toBe('[rx-batcher] "runner": runBatch must return one result per input (2 here), but the Observable it returned completed without emitting.');

    const erroring = invoke(() => new Observable<number[]>((s) => s.error('boom')));
    expect(failure(erroring.reports)).toBe('boom');
  });

  it('checks the shape: a wrong count or a non-array-like (a string too) is a BatchResultError', () => {
    const short = failure(invoke(() => [1]).reports) as BatchResultError;
    expect(short).toMatchObject({ name: 'BatchResultError', batcher: 'runner', expected: 2, actual: 1 });
    expect(short.message).toBe('[rx-batcher] "runner": runBatch must return an array with one result per input, but returned 1 results for 2 inputs. Results are matched to callers by position.');
    for (const bad of ['ab', 42, null, undefined, { length: -1 }, { length: 1.5 }]) {
      const error = failure(invoke(() => bad).reports) as BatchResultError;
      expect(error).toBeInstanceOf(BatchResultError);
      expect(error.actual).toBeUndefined();
    }
    expect((failure(invoke(() => 'ab').reports) as Error).message).toContain('but it returned "ab" (string)');
  });

  it('turns every throw into a failure: runBatch itself, a `then` getter, a `length` getter', () => {
    const thrown = new Error('sync throw');
    expect(failure(invoke(() => { throw thrown; }).reports)).toBe(thrown);
    const thenGetter = new Error('then getter');
    expect(failure(invoke(() => ({ get then() { throw thenGetter; } })).reports)).toBe(thenGetter);
    const lengthGetter = new Error('length getter');
    expect(failure(invoke(() => ({ get length() { throw lengthGetter; } })).reports)).toBe(lengthGetter);
  });

  it('reports once even when a thenable calls back twice or an Observable errors after emitting', async () => {
    const twice = invoke(() => ({ then(ok: (v: unknown) => void, no: (e: unknown) => void) { ok([1, 2]); no(new Error('late')); ok([3, 4]); } }));
    await settleMicrotasks();
    expect(twice.reports).toEqual([{ returned: [1, 2] }]);
    const emitsThenErrors = invoke(() => new Observable<number[]>((s) => { s.next([1, 2]); s.error(new Error('after')); }));
    expect(emitsThenErrors.reports).toEqual([{ returned: [1, 2] }]);
    const badThenLate = invoke(() => ({ then(ok: (v: unknown) => void) { ok([1]); ok([1, 2]); } }));
    expect(badThenLate.reports).toHaveLength(1);
    expect((badThenLate.reports[0] as { failed: unknown }).failed).toBeInstanceOf(BatchResultError);
  });
});

/** A promise for one slot, settled when the test says, that records the CALLER_GONE hook. */
interface Slot extends Deferred<number> {
  late: LateResult<number>;
  gone: number;
}
function slot(): Slot {
  const d = deferred<number>();
  const s: Slot = { ...d, late: d.promise as LateResult<number>, gone: 0 };
  s.late[CALLER_GONE] = () => void s.gone++;
  return s;
}

function addsUp(s: BatcherStats): void {
  expect(s.submitted).toBe(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected);
}

/**
 * A Batcher whose batches answer at once, with the slots the test hands it: `answers[k]` is
 * the result array of batch k (a number, an Error or a promise per slot).
 */
function lateBatcher(answers: unknown[][], options: { maxConcurrentBatches?: number; maxBatchSize?: number } = {}) {
  const scheduler = new ManualScheduler();
  const batches: number[][] = [];
  const signals: AbortSignal[] = [];
  const batcher = new Batcher<number, number>({
    maxBatchSize: options.maxBatchSize ?? 3,
    maxConcurrentBatches: options.maxConcurrentBatches ?? 1,
    scheduler,
    runBatch: (xs, c) => {
      signals.push(c.signal);
      batches.push([...xs]);
      return answers[batches.length - 1] as never;
    },
  });
  return { scheduler, batcher, batches, signals };
}

describe('late result slots: a promise in a slot settles its own caller', () => {
  it('a slot promise resolving settles only that caller; plain slots settle at once', async () => {
    const [a, c] = [slot(), slot()];
    const { scheduler, batcher } = lateBatcher([[a.late, 20, c.late]]);
    const calls = [1, 2, 3].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    await settleMicrotasks();
    expect(calls.map((o) => o.settled)).toEqual([false, true, false]);
    expect(calls[1].value).toBe(20);
    a.resolve(10);
    await settleMicrotasks();
    expect(calls.map((o) => o.settled)).toEqual([true, true, false]);
    expect(calls[0].value).toBe(10);
    expect(batcher.stats()).toMatchObject({ succeeded: 2, inFlight: 1, batchesInFlight: 1 });
    c.resolve(30);
    await settleMicrotasks();
    expect(calls.map((o) => o.value)).toEqual([10, 20, 30]);
    expect(batcher.stats()).toMatchObject({ succeeded: 3, inFlight: 0, batchesInFlight: 0, failedBatches: 0 });
    expect(batcher.stats().lastBatch?.outcome).toBe('succeeded');
    expect([a.gone, c.gone]).toEqual([0, 0]); // settled normally: nobody is told the caller left
    addsUp(batcher.stats());
  });

  it('a slot promise rejecting (or resolving to an Error) fails only that caller', async () => {
    const [a, b, c] = [slot(), slot(), slot()];
    const { scheduler, batcher } = lateBatcher([[a.late, b.late, c.late]]);
    const calls = [1, 2, 3].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    const rejected = new RangeError('item 1 failed');
    const resolvedToError = new TypeError('item 2 is an error value');
    a.reject(rejected);
    b.resolve(resolvedToError as never);
    c.resolve(30);
    await settleMicrotasks();
    expect(calls.map((o) => o.error ?? o.value)).toEqual([rejected, resolvedToError, 30]);
    expect(batcher.stats()).toMatchObject({ succeeded: 1, failed: 2, failedBatches: 0, inFlight: 0 });
    addsUp(batcher.stats());
  });

  it('keeps the batch\'s slot until the last slot promise settles: the next batch waits', async () => {
    const [a, b] = [slot(), slot()];
    const { scheduler, batcher, batches } = lateBatcher([[a.late, b.late], [3, 4]], { maxBatchSize: 2, maxConcurrentBatches: 1 });
    const first = [1, 2].map((x) => outcome(batcher.run(x)));
    const second = [3, 4].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    expect(batches).toEqual([[1, 2]]);
    a.resolve(1);
    await settleMicrotasks();
    expect(first[0].value).toBe(1);
    expect(batches).toEqual([[1, 2]]); // one slot promise still pending: the slot is held
    expect(batcher.stats()).toMatchObject({ batchesInFlight: 1, inFlight: 1, queued: 2 });
    addsUp(batcher.stats());
    b.resolve(2);
    await settleMicrotasks();
    expect(batches).toEqual([[1, 2], [3, 4]]);
    expect([...first, ...second].map((o) => o.value)).toEqual([1, 2, 3, 4]);
    addsUp(batcher.stats());
  });

  it('a caller that times out while its slot promise is pending settles at its deadline, frees the slot if it was the last, and the later result is ignored', async () => {
    const [a, b] = [slot(), slot()];
    const { scheduler, batcher, batches } = lateBatcher([[a.late, b.late], [30]], { maxBatchSize: 2 });
    const patient = outcome(batcher.run(1));
    const hasty = outcome(batcher.run(2, { timeoutMs: 50 }));
    const next = outcome(batcher.run(3));
    scheduler.advance(0);
    a.resolve(10);
    await settleMicrotasks();
    expect(patient.value).toBe(10);
    scheduler.advance(49);
    await settleMicrotasks();
    expect(hasty.settled).toBe(false);
    expect(batches).toHaveLength(1);
    scheduler.advance(1);
    await settleMicrotasks();
    expect(hasty.error).toBeInstanceOf(RequestTimeoutError);
    expect(hasty.error).toMatchObject({ timeoutMs: 50, phase: 'running' });
    expect(b.gone).toBe(1); // its owner is told at once
    expect(batches).toEqual([[1, 2], [3]]); // it was the last one awaited: the slot is free
    expect(next.value).toBe(30);
    const before = batcher.stats();
    expect(before).toMatchObject({ succeeded: 2, timedOut: 1, inFlight: 0, batchesInFlight: 0, abandonedBatches: 0 });
    addsUp(before);
    b.resolve(20);
    await settleMicrotasks();
    expect(hasty.error).toBeInstanceOf(RequestTimeoutError);
    expect(batcher.stats()).toBe(before); // nothing changed, nothing counted twice
    expect(b.gone).toBe(1);
  });

  it('a caller that aborts while its slot promise is pending settles at once; the slot is held while another promise is pending', async () => {
    const [a, b] = [slot(), slot()];
    const { scheduler, batcher, batches } = lateBatcher([[a.late, b.late], [30]], { maxBatchSize: 2 });
    const controller = new AbortController();
    const leaving = outcome(batcher.run(1, { signal: controller.signal }));
    const staying = outcome(batcher.run(2));
    const next = outcome(batcher.run(3));
    scheduler.advance(0);
    const reason = new Error('client left');
    controller.abort(reason);
    await settleMicrotasks();
    expect(leaving.error).toBe(reason);
    expect([a.gone, b.gone]).toEqual([1, 0]);
    expect(batches).toHaveLength(1); // b is still awaited
    expect(batcher.stats()).toMatchObject({ cancelled: 1, inFlight: 1, batchesInFlight: 1 });
    addsUp(batcher.stats());
    a.reject(new Error('ignored: its caller left'));
    b.resolve(20);
    await settleMicrotasks();
    expect(leaving.error).toBe(reason);
    expect(staying.value).toBe(20);
    expect(next.value).toBe(30);
    expect(batcher.stats()).toMatchObject({ cancelled: 1, succeeded: 2, failed: 0, inFlight: 0, batchesInFlight: 0 });
    addsUp(batcher.stats());
  });

  it('a plain stop() aborts ctx.signal but waits for the slot promises, which still deliver', async () => {
    const a = slot();
    const { scheduler, batcher, signals } = lateBatcher([[a.late, 2]], { maxBatchSize: 2 });
    const calls = [1, 2].map((x) => outcome(batcher.run(x)));
    const queued = outcome(batcher.run(3));
    scheduler.advance(0);
    let stopped = false;
    void batcher.stop().then(() => (stopped = true));
    await settleMicrotasks();
    expect(signals[0].aborted).toBe(true);
    expect(queued.error).toMatchObject({ name: 'BatcherStoppedError', when: 'queued' });
    expect(stopped).toBe(false);
    a.resolve(1);
    await settleMicrotasks();
    expect(calls.map((o) => o.value)).toEqual([1, 2]);
    expect(stopped).toBe(true);
    expect(batcher.stats()).toMatchObject({ succeeded: 2, rejected: 1, inFlight: 0, stopped: true });
    addsUp(batcher.stats());
  });

  it('a slot whose `then` getter throws fails only that caller', async () => {
    const thrown = new Error('hostile then');
    const hostile = { get then(): never { throw thrown; } };
    const { scheduler, batcher } = lateBatcher([[hostile, 2]], { maxBatchSize: 2 });
    const calls = [1, 2].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    await settleMicrotasks();
    expect(calls.map((o) => o.error ?? o.value)).toEqual([thrown, 2]);
    expect(batcher.stats()).toMatchObject({ failed: 1, succeeded: 1, batchesInFlight: 0, failedBatches: 0 });
  });

  // A caller can settle before the batch's results come back (it aborted or timed out while
  // runBatch's own promise was pending, or the whole batch was abandoned): its slot promise is
  // still observed (no unhandled rejection) and its owner hears CALLER_GONE.
  it('a slot promise for a caller that left before the results came is still observed and told CALLER_GONE', async () => {
    const scheduler = new ManualScheduler();
    const results = deferred<unknown[]>();
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, scheduler, runBatch: () => results.promise as never });
    const controller = new AbortController();
    const leaving = outcome(batcher.run(1, { signal: controller.signal }));
    const staying = outcome(batcher.run(2));
    scheduler.advance(0);
    controller.abort(new Error('left while runBatch ran'));
    const seen = { thenCalls: 0, gone: 0 };
    const late = {
      then(): void {
        seen.thenCalls++;
      },
      [CALLER_GONE](): void {
        seen.gone++;
      },
    };
    results.resolve([late, 20]);
    await settleMicrotasks();
    expect(staying.value).toBe(20);
    expect(leaving.error).toEqual(new Error('left while runBatch ran'));
    expect(batcher.stats()).toMatchObject({ cancelled: 1, succeeded: 1, inFlight: 0, batchesInFlight: 0 });
    expect({ observed: seen.thenCalls > 0, gone: seen.gone }).toEqual({ observed: true, gone: 1 });
  });
});
