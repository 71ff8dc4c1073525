/**
 * `isolateFailures: 'bisect'` (lib/core/bisect.ts): a batch whose runBatch call throws is split
 * and retried until the failing input is alone. The rule is checked against a reference model
 * of it over random batches and poison sets (fast-check), counting model calls; then deadlines,
 * aborts, stops, contexts, stats and the option itself, on a manual clock.
 */
import fc from 'fast-check';
import { EMPTY, from, lastValueFrom, toArray } from 'rxjs';
import {
  Batcher, batchMapSettled, BatcherStoppedError, BatchResultError, RequestTimeoutError, StreamingBatcher,
  type BatchContext, type RunBatch,
} from '../../lib';
import { ManualScheduler } from '../helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks } from '../helpers/recording';

class Poison extends Error {
  constructor(readonly inputs: readonly number[]) {
    super(`cannot run ${inputs.join(',')}`);
  }
}

/** A model that throws for any batch holding a poisoned input (or always, when down); records every call. */
function model(poison: ReadonlySet<number>, down = false) {
  const calls: { inputs: number[]; ctx: BatchContext }[] = [];
  const runBatch: RunBatch<number, number> = (inputs, ctx) => {
    calls.push({ inputs: [...inputs], ctx });
    const bad = inputs.filter((x) => poison.has(x));
    if (down || bad.length > 0) throw new Poison(down ? inputs : bad);
    return inputs.map((x) => 10 * x);
  };
  return { calls, runBatch };
}

/** What the rule says for one failed batch: each input's outcome and the number of extra calls. */
function reference(inputs: readonly number[], fails: (part: readonly number[]) => boolean): { ok: Set<number>; extraCalls: number } {
  const ok = new Set<number>();
  let part = [...inputs];
  let extraCalls = 0;
  while (part.length > 1) {
    const cut = Math.ceil(part.length / 2);
    const halves = [part.slice(0, cut), part.slice(cut)];
    extraCalls += 2;
    const failed = halves.filter(fails);
    for (const h of halves) if (!fails(h)) for (const x of h) ok.add(x);
    if (failed.length !== 1) break;
    part = failed[0];
  }
  return { ok, extraCalls };
}

const log2ceil = (n: number): number => Math.ceil(Math.log2(n));

async function runAll(batcher: Batcher<number, number>, inputs: readonly number[]) {
  const settled = Promise.allSettled(inputs.map((x) => batcher.run(x)));
  batcher.flush();
  return settled;
}

describe("isolateFailures: 'bisect'", () => {
  it('property: the failing inputs get the model’s error, every other caller its result, within 2⌈log₂ n⌉ extra calls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 64 }).chain((n) => fc.tuple(fc.constant(n), fc.subarray(Array.from({ length: n }, (_, i) => i)))),
        fc.boolean(),
        async ([n, poisoned], down) => {
          const poison = new Set(poisoned);
          const { calls, runBatch } = model(poison, down);
          const batcher = new Batcher<number, number>({ runBatch, maxBatchSize: n, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler() });
          const inputs = Array.from({ length: n }, (_, i) => i);
          const results = await runAll(batcher, inputs);
          const failing = down ? inputs.length : poison.size;

          // The bound, counted: one first call, then at most 2⌈log₂ n⌉ more, and none at all when nothing fails.
          const extra = calls.length - 1;
          expect(extra).toBeLessThanOrEqual(failing === 0 ? 0 : 2 * log2ceil(n));
          expect(extra).toBeLessThanOrEqual(failing * 2 * log2ceil(n));
          // A model that is down costs two more calls, not a storm.
          if (down && n > 1) expect(extra).toBe(2);
          // Exactly what the rule says, input by input.
          const expected = failing === 0 || n === 1 ? { ok: new Set(failing === 0 ? inputs : []), extraCalls: 0 } : reference(inputs, (part) => down || part.some((x) => poison.has(x)));
          expect(extra).toBe(expected.extraCalls);
          for (const x of inputs) {
            const r = results[x];
            if (expected.ok.has(x)) expect(r).toEqual({ status: 'fulfilled', value: 10 * x });
            else {
              expect(r.status).toBe('rejected');
              expect((r as PromiseRejectedResult).reason).toBeInstanceOf(Poison);
            }
          }
          // One failing input is always found, and alone it is what fails.
          if (!down && poison.size === 1) {
            const [p] = poison;
            expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
            expect((results[p] as PromiseRejectedResult).reason).toEqual(new Poison([p]));
          }
          const s = batcher.stats();
          expect(s).toMatchObject({ batches: 1, bisections: failing > 0 && n > 1 ? 1 : 0, bisectionCalls: extra, inFlight: 0 });
          expect(s.succeeded + s.failed).toBe(n);
          await batcher.stop();
        },
      ),
      { numRuns: 300 },
    );
  });

  it('retried parts see the batch’s id and reason, their own size and contexts, and ctx.bisection', async () => {
    const { calls, runBatch } = model(new Set([5]));
    const batcher = new Batcher<number, number>({ runBatch, maxBatchSize: 8, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler() });
    const settled = Promise.allSettled([0, 1, 2, 3, 4, 5].map((x) => batcher.run(x, { context: `c${x}` })));
    batcher.flush();
    await settled;
    expect(calls.map((c) => c.inputs)).toEqual([[0, 1, 2, 3, 4, 5], [0, 1, 2], [3, 4, 5], [3, 4], [5]]);
    expect(calls[0].ctx.bisection).toBeUndefined();
    expect(calls.slice(1).map((c) => ({ id: c.ctx.batchId, reason: c.ctx.reason, size: c.ctx.size, weight: c.ctx.weight, contexts: c.ctx.contexts, step: c.ctx.bisection && { call: c.ctx.bisection.call, depth: c.ctx.bisection.depth } }))).toEqual([
      { id: 1, reason: 'flush', size: 3, weight: 3, contexts: ['c0', 'c1', 'c2'], step: { call: 2, depth: 1 } },
      { id: 1, reason: 'flush', size: 3, weight: 3, contexts: ['c3', 'c4', 'c5'], step: { call: 3, depth: 1 } },
      { id: 1, reason: 'flush', size: 2, weight: 2, contexts: ['c3', 'c4'], step: { call: 4, depth: 2 } },
      { id: 1, reason: 'flush', size: 1, weight: 1, contexts: ['c5'], step: { call: 5, depth: 2 } },
    ]);
    expect(calls[1].ctx.bisection!.cause).toEqual(new Poison([5]));
    expect(calls[3].ctx.bisection!.cause).toEqual(new Poison([5])); // the error of the half [3, 4, 5]
    expect(calls[3].ctx.bisection!.cause).not.toBe(calls[1].ctx.bisection!.cause);
    const s = batcher.stats();
    expect(s).toMatchObject({ batches: 1, failedBatches: 1, bisections: 1, bisectionCalls: 4, succeeded: 5, failed: 1 });
    expect(s.lastBatch).toMatchObject({ batchId: 1, size: 6, outcome: 'failed' });
    await batcher.stop();
  });

  it('a wrong-length result is a bug in runBatch, not an input’s: it is not bisected', async () => {
    const calls: number[][] = [];
    const batcher = new Batcher<number, number>({
      runBatch: (xs) => (calls.push([...xs]), xs.slice(1)), maxBatchSize: 4, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler(),
    });
    const results = await runAll(batcher, [1, 2, 3]);
    expect(calls).toEqual([[1, 2, 3]]);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BatchResultError);
    expect(batcher.stats()).toMatchObject({ bisections: 0, failedBatches: 1 });
  });

  it("off by default ('none'): the batch's callers all fail with the error, one call", async () => {
    const { calls, runBatch } = model(new Set([2]));
    const batcher = new Batcher<number, number>({ runBatch, maxBatchSize: 4, maxDelayMs: 1000, scheduler: new ManualScheduler() });
    const results = await runAll(batcher, [1, 2, 3]);
    expect(calls).toHaveLength(1);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(batcher.stats()).toMatchObject({ bisections: 0, bisectionCalls: 0 });
    expect(batcher.stats().settings).not.toHaveProperty('isolateFailures');
  });

  it('Error slots and promise slots of a retried part settle their own callers', async () => {
    const late = deferred<number>();
    const batcher = new Batcher<number, number>({
      runBatch: (xs) => {
        if (xs.includes(9)) throw new Error('nine');
        return xs.map((x) => (x === 2 ? new RangeError('two') : x === 3 ? late.promise : x));
      },
      maxBatchSize: 4, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler(),
    });
    const calls = [1, 2, 3, 9].map((x) => outcome(batcher.run(x)));
    batcher.flush();
    await settleMicrotasks(30);
    expect(calls.map((c) => c.settled)).toEqual([true, true, false, true]);
    expect(calls[0].value).toBe(1);
    expect(calls[1].error).toBeInstanceOf(RangeError);
    expect((calls[3].error as Error).message).toBe('nine');
    expect(batcher.stats().batchesInFlight).toBe(1); // the slot is held for the promise
    late.resolve(33);
    await settleMicrotasks(30);
    expect(calls[2].value).toBe(33);
    expect(batcher.stats()).toMatchObject({ batchesInFlight: 0, succeeded: 2, failed: 2 });
  });

  it('deadlines and aborts apply during bisection; each caller settles once; a part nobody waits for is aborted', async () => {
    const scheduler = new ManualScheduler();
    const parts: { inputs: number[]; ctx: BatchContext; done: ReturnType<typeof deferred<number[]>> }[] = [];
    let first = true;
    const batcher = new Batcher<number, number>({
      runBatch: (xs, ctx) => {
        if (first) {
          first = false;
          throw new Error('boom');
        }
        const done = deferred<number[]>();
        parts.push({ inputs: [...xs], ctx, done });
        return done.promise;
      },
      maxBatchSize: 4, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler,
    });
    const abort = new AbortController();
    const a = outcome(batcher.run(1, { timeoutMs: 50 }));
    const b = outcome(batcher.run(2, { signal: abort.signal }));
    const c = outcome(batcher.run(3));
    const d = outcome(batcher.run(4));
    batcher.flush();
    await settleMicrotasks(30);
    expect(parts.map((p) => p.inputs)).toEqual([[1, 2]]);
    scheduler.advance(50); // 1's deadline passes while its part runs
    await settleMicrotasks(30);
    expect(a.error).toBeInstanceOf(RequestTimeoutError);
    expect(parts[0].ctx.signal.aborted).toBe(false); // 2 still waits for it
    abort.abort(new Error('caller left'));
    await settleMicrotasks(30);
    expect((b.error as Error).message).toBe('caller left');
    expect(parts[0].ctx.signal.aborted).toBe(true); // nobody waits for this part: told at once
    expect(parts.map((p) => p.inputs)).toEqual([[1, 2], [3, 4]]); // and the next part runs
    parts[0].done.resolve([10, 20]); // too late: dropped
    parts[1].done.resolve([30, 40]);
    await settleMicrotasks(30);
    expect([c.value, d.value]).toEqual([30, 40]);
    expect(batcher.stats()).toMatchObject({ succeeded: 2, timedOut: 1, cancelled: 1, inFlight: 0, batchesInFlight: 0, bisectionCalls: 2 });
  });

  it('a stop without draining during bisection makes no more calls: those not retried yet get BatcherStoppedError', async () => {
    const parts: { inputs: number[]; ctx: BatchContext }[] = [];
    const hold = deferred<number[]>();
    let first = true;
    const batcher = new Batcher<number, number>({
      runBatch: (xs, ctx) => {
        if (first) {
          first = false;
          throw new Error('boom');
        }
        parts.push({ inputs: [...xs], ctx });
        return hold.promise;
      },
      maxBatchSize: 4, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler(),
    });
    const calls = [1, 2, 3, 4].map((x) => outcome(batcher.run(x)));
    batcher.flush();
    await settleMicrotasks(30);
    const stopped = batcher.stop();
    await settleMicrotasks(30);
    expect(parts).toHaveLength(1);
    expect(parts[0].ctx.signal.aborted).toBe(true);
    await stopped;
    expect(calls.every((c) => c.error instanceof BatcherStoppedError)).toBe(true);
  });

  it('works in batchMap and can be turned on and off with configure()', async () => {
    const { calls, runBatch } = model(new Set([3]));
    const settled = await lastValueFrom(from([1, 2, 3, 4]).pipe(batchMapSettled(runBatch, { maxBatchSize: 4, isolateFailures: 'bisect' }), toArray()));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(calls).toHaveLength(5);

    const other = model(new Set([3]));
    const batcher = new Batcher<number, number>({ runBatch: other.runBatch, maxBatchSize: 4, maxDelayMs: 1000, scheduler: new ManualScheduler() });
    batcher.configure({ isolateFailures: 'bisect' });
    expect(batcher.stats().settings.isolateFailures).toBe('bisect');
    expect((await runAll(batcher, [1, 2, 3, 4])).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    batcher.configure({ isolateFailures: 'none' });
    expect((await runAll(batcher, [1, 2, 3, 4])).map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
  });

  it('is refused by streaming outputs, at construction and in configure()', () => {
    const runBatch = () => EMPTY;
    expect(() => new StreamingBatcher({ maxBatchSize: 2, runBatch, isolateFailures: 'bisect' })).toThrow(/`isolateFailures: 'bisect'` cannot be used with streaming outputs/);
    const streaming = new StreamingBatcher({ maxBatchSize: 2, runBatch });
    expect(() => streaming.configure({ isolateFailures: 'bisect' })).toThrow(TypeError);
    expect(streaming.stats().settings).not.toHaveProperty('isolateFailures');
  });

  it('refuses a bad value with a typed error naming the option and the value', () => {
    const make = (isolateFailures: unknown) => () => new Batcher({ name: 'ranker', runBatch: (xs: readonly number[]) => xs, maxBatchSize: 4, isolateFailures } as never);
    expect(make('bisekt')).toThrow(RangeError);
    expect(make('bisekt')).toThrow(`[rx-batcher] "ranker": \`isolateFailures\` must be 'none' (a failed runBatch call fails every caller of its batch) or 'bisect' (the batch is split and retried until the failing input is alone), got "bisekt"`);
    expect(make(true)).toThrow(TypeError);
    expect(make(true)).toThrow('got true');
    const b = new Batcher({ runBatch: (xs: readonly number[]) => xs, maxBatchSize: 4 });
    expect(() => b.configure({ isolateFailures: 'always' as never })).toThrow(RangeError);
    expect(() => new Batcher({ runBatch: (xs: readonly number[]) => xs, maxBatchSize: 4, bisect: true } as never)).toThrow('did you mean `isolateFailures`?');
  });
});
