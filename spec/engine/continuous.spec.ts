/**
 * Continuous batching (lib/core/continuous.ts through `StreamingBatcher({ continuous })`):
 * items advance one step at a time; between two steps finished items leave and waiting
 * requests join, up to `maxBatchSize`. Virtual time only: steps are promises the test
 * resolves, or synchronous steps paced by a manual clock.
 */
import fc from 'fast-check';
import {
  BatchResultError,
  BatcherStoppedError,
  done,
  last,
  QueueFullError,
  RequestTimeoutError,
  skip,
  StreamingBatcher,
  type ContinuousBatching,
  type StepContext,
  type StreamingBatcherStats,
} from '../../lib';
import { ManualScheduler } from '../helpers/manualScheduler';
import { deferred, outcome, settleMicrotasks, type Deferred } from '../helpers/recording';

/** An item's state: its input, and how many chunks it has produced. */
interface Gen {
  readonly input: string;
  readonly length: number;
  at: number;
}

/**
 * A model whose input `name:n` produces n chunks `name1…namen` (then done), one per step;
 * every step waits for the test to resolve it.
 */
function controlledModel() {
  const steps: { states: string[]; ctx: StepContext; result: Deferred<unknown[]> }[] = [];
  const released: string[] = [];
  const model: ContinuousBatching<string, string, Gen> = {
    init: (input) => {
      const length = Number(input.split(':')[1]);
      if (!Number.isInteger(length)) throw new TypeError(`bad input ${input}`);
      return { input, length, at: 0 };
    },
    runStep: (states, ctx) => {
      const result = deferred<unknown[]>();
      steps.push({ states: states.map((s) => s.input), ctx, result });
      return result.promise.then((override) => override ?? states.map(advance)) as never;
    },
    release: (state) => released.push(state.input),
  };
  /** Resolves the newest step with the model's own slots (or `slots`), and lets it be applied. */
  const step = async (slots?: unknown[]): Promise<void> => {
    steps[steps.length - 1].result.resolve(slots as never);
    await settleMicrotasks();
  };
  return { model, steps, released, step };
}

function advance(state: Gen): string | symbol | object {
  state.at++;
  const name = state.input.split(':')[0];
  if (state.at > state.length) return done;
  return state.at === state.length ? last(`${name}${state.at}`) : `${name}${state.at}`;
}

function addsUp(s: StreamingBatcherStats): void {
  expect(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected).toBe(s.submitted);
}

function setup(options: Record<string, unknown> = {}) {
  const scheduler = new ManualScheduler();
  const m = controlledModel();
  const batcher = new StreamingBatcher<string, string>({ maxBatchSize: 2, scheduler, continuous: m.model, ...options });
  return { scheduler, batcher, ...m };
}

describe('continuous batching: between two steps, finished items leave and waiting requests join', () => {
  it('a short request that arrives while a long one runs joins at the next step, not after it', async () => {
    const { scheduler, batcher, steps, step } = setup();
    const long = outcome(batcher.run('L:6'));
    scheduler.advance(0);
    await step();
    await step();
    const short = outcome(batcher.run('s:2', { context: 'short one', timeoutMs: 1_000_000 - scheduler.now() }));
    scheduler.advance(0);
    expect(steps.map((s) => s.states)).toEqual([['L:6'], ['L:6'], ['L:6']]); // step 3 had started
    await step();
    expect(steps[3].states).toEqual(['L:6', 's:2']);
    expect([steps[3].ctx.joined, steps[3].ctx.step, steps[3].ctx.batchId, steps[3].ctx.size]).toEqual([1, 3, 1, 2]);
    expect([steps[3].ctx.contexts, steps[3].ctx.deadlines, steps[3].ctx.partition]).toEqual([[undefined, 'short one'], [Infinity, 1_000_000], undefined]);
    await step();
    await step();
    expect(short.value).toEqual(['s1', 's2']);
    expect(long.settled).toBe(false);
    await step();
    expect(long.value).toEqual(['L1', 'L2', 'L3', 'L4', 'L5', 'L6']);
    expect(steps.map((s) => s.states.length)).toEqual([1, 1, 1, 2, 2, 1]);
    expect(batcher.stats()).toMatchObject({ batches: 1, admittedBetweenSteps: 1, steps: 6, chunks: 8, succeeded: 2 });
  });

  it('never runs more than maxBatchSize items; waiting requests take places as they free, first come first served', async () => {
    const { scheduler, batcher, steps, step, released } = setup({ maxBatchSize: 2 });
    const runs = ['a:1', 'b:3', 'c:1', 'd:1', 'e:2'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    for (let i = 0; i < 8 && steps.length > 0 && !runs.every((r) => r.settled); i++) await step();
    expect(steps.map((s) => s.states)).toEqual([['a:1', 'b:3'], ['b:3', 'c:1'], ['b:3', 'd:1'], ['e:2'], ['e:2']]);
    expect(runs.map((r) => r.value)).toEqual([['a1'], ['b1', 'b2', 'b3'], ['c1'], ['d1'], ['e1', 'e2']]);
    expect(released.sort()).toEqual(['a:1', 'b:3', 'c:1', 'd:1', 'e:2']); // each state released once
    await settleMicrotasks();
    expect(batcher.stats()).toMatchObject({ batchesInFlight: 0, batches: 1, admittedBetweenSteps: 3, inFlight: 0 });
  });

  it('init runs when an item joins (not when it queues), and init throwing fails that caller alone', async () => {
    const { scheduler, batcher, steps, step } = setup();
    const bad = outcome(batcher.run('bad:x'));
    const good = outcome(batcher.run('g:1'));
    scheduler.advance(0);
    await settleMicrotasks();
    expect(bad.error).toBeInstanceOf(TypeError);
    expect(steps[0].states).toEqual(['g:1']);
    await step();
    expect(good.value).toEqual(['g1']);
  });

  it('a caller that aborts mid-stream is retired before the next step, its state released; its place goes to a waiting request', async () => {
    const { scheduler, batcher, steps, step, released } = setup();
    const controller = new AbortController();
    const chunks: string[] = [];
    let error: unknown;
    batcher.stream('a:9', { signal: controller.signal }).subscribe({ next: (c) => chunks.push(c), error: (e: unknown) => (error = e) });
    const b = outcome(batcher.run('b:3'));
    const c = outcome(batcher.run('c:1'));
    scheduler.advance(0);
    await step();
    const reason = new Error('tab closed');
    controller.abort(reason);
    expect([chunks, error]).toEqual([['a1'], reason]);
    expect(released).toEqual([]); // its state is still inside the running step
    await step(); // a's chunk of this step is dropped
    expect(chunks).toEqual(['a1']);
    expect(released).toEqual(['a:9']);
    expect(steps[2].states).toEqual(['b:3', 'c:1']);
    expect(steps[1].ctx.signal.aborted).toBe(false); // b still waits
    await step();
    await step();
    expect([b.value, c.value]).toEqual([['b1', 'b2', 'b3'], ['c1']]);
  });

  it('when every caller has gone, ctx.signal aborts, the loop is abandoned (a late step is dropped) and a new loop serves whoever waits', async () => {
    const { scheduler, batcher, steps, step } = setup({ maxBatchSize: 1 });
    const controller = new AbortController();
    const gone = outcome(batcher.run('a:5', { signal: controller.signal }));
    const next = outcome(batcher.run('b:1'));
    scheduler.advance(0);
    const ctx = steps[0].ctx;
    controller.abort(new Error('left'));
    expect(ctx.signal.aborted).toBe(true);
    await settleMicrotasks();
    expect(gone.error).toMatchObject({ message: 'left' });
    expect(steps.map((s) => [s.ctx.batchId, s.states])).toEqual([[1, ['a:5']], [2, ['b:1']]]);
    steps[0].result.resolve(['late']);
    await step();
    expect(next.value).toEqual(['b1']);
    expect(batcher.stats()).toMatchObject({ abandonedBatches: 1, batches: 2, cancelled: 1, succeeded: 1 });
  });

  it('runStep failing fails the items of that step; the batcher goes on with a new loop', async () => {
    const { scheduler, batcher, steps } = setup({ maxBatchSize: 2 });
    const [a, b, c] = ['a:3', 'b:3', 'c:1'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    const oom = new Error('out of memory');
    steps[0].result.reject(oom);
    await settleMicrotasks();
    expect([a.error, b.error]).toEqual([oom, oom]);
    expect(steps[1].states).toEqual(['c:1']);
    steps[1].result.resolve(undefined as never);
    await settleMicrotasks();
    expect(c.value).toEqual(['c1']);
    expect(batcher.stats()).toMatchObject({ failedBatches: 1, batches: 2 });
  });

  it('a step with the wrong number of slots fails its items with a BatchResultError; an Error slot fails one item', async () => {
    const { scheduler, batcher, step } = setup();
    const [a, b] = ['a:3', 'b:3'].map((x) => outcome(batcher.run(x)));
    scheduler.advance(0);
    const own = new RangeError('b only');
    await step(['a1', own]);
    expect(b.error).toBe(own);
    await step(['a2', 'extra']);
    expect(a.error).toBeInstanceOf(BatchResultError);
    expect((a.error as Error).message).toMatch(/runStep returned 2 slots for 1 states/);
  });

  it('deadlines bound the whole stream; maxQueueSize counts only waiting requests', async () => {
    const { scheduler, batcher, steps, step } = setup({ maxBatchSize: 1, maxQueueSize: 1 });
    const hasty = outcome(batcher.run('a:9', { timeoutMs: 30 }));
    scheduler.advance(0);
    const waiting = outcome(batcher.run('b:1'));
    const refused = outcome(batcher.run('c:1'));
    await settleMicrotasks();
    expect(refused.error).toBeInstanceOf(QueueFullError);
    await step();
    scheduler.advance(30);
    await settleMicrotasks();
    expect(hasty.error).toBeInstanceOf(RequestTimeoutError);
    // It was the loop's only item: the loop is abandoned and a new one serves the waiting request.
    expect(steps.map((s) => [s.ctx.batchId, s.states])).toEqual([[1, ['a:9']], [1, ['a:9']], [2, ['b:1']]]);
    expect(steps[1].ctx.signal.aborted).toBe(true);
    await step();
    expect(waiting.value).toEqual(['b1']);
  });

  it('a plain stop rejects the queue and admits nobody more; items running finish (ctx.signal aborted); stop resolves after', async () => {
    const { scheduler, batcher, steps, step } = setup({ maxBatchSize: 2 });
    const a = outcome(batcher.run('a:2'));
    scheduler.advance(0);
    const queuedLate = outcome(batcher.run('b:1'));
    const stopped = outcome(batcher.stop());
    await settleMicrotasks();
    expect(queuedLate.error).toBeInstanceOf(BatcherStoppedError);
    expect(steps[0].ctx.signal.aborted).toBe(true);
    await step();
    await step();
    expect(a.value).toEqual(['a1', 'a2']);
    expect(steps.map((s) => s.states)).toEqual([['a:2'], ['a:2']]);
    expect(stopped.settled).toBe(true);
  });

  it('stop({ drain: true }) admits what is queued into the running loop and finishes it', async () => {
    const { scheduler, batcher, steps, step } = setup({ maxBatchSize: 2 });
    const a = outcome(batcher.run('a:2'));
    scheduler.advance(0);
    const b = outcome(batcher.run('b:1'));
    const stopped = outcome(batcher.stop({ drain: true }));
    await step();
    expect(steps[1].states).toEqual(['a:2', 'b:1']);
    await step();
    expect([a.value, b.value, stopped.settled]).toEqual([['a1', 'a2'], ['b1'], true]);
  });

  it('synchronous steps are paced by the scheduler (timers and I/O run between steps)', () => {
    const scheduler = new ManualScheduler();
    let stepsTaken = 0;
    const batcher = new StreamingBatcher<number, number>({
      maxBatchSize: 4,
      scheduler,
      continuous: { init: (n) => ({ n, at: 0 }), runStep: (states) => (stepsTaken++, states.map((s) => (s.at++ < s.n ? s.at : done))) },
    });
    const got: number[] = [];
    batcher.stream(3).subscribe((x) => got.push(x));
    scheduler.advance(0);
    expect(stepsTaken).toBeGreaterThanOrEqual(1);
    expect(stepsTaken).toBeLessThanOrEqual(5);
    scheduler.advance(0);
    scheduler.advance(0);
    scheduler.advance(0);
    expect(got).toEqual([1, 2, 3]);
  });
});

describe('continuous batching, model-based', () => {
  // Random arrivals (input lengths), random aborts and deadlines, random step timing. After
  // every step: no step held more than maxBatchSize items; none left a place free while a
  // request that arrived before the step waited (work-conserving); each caller received
  // exactly its own chunks in order; each settled once; each state released once.
  type Op = { kind: 'arrive'; length: number; timeoutMs?: number } | { kind: 'abort'; which: number } | { kind: 'step' } | { kind: 'wait'; ms: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('arrive' as const), length: fc.integer({ min: 0, max: 6 }), timeoutMs: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }) }),
    fc.record({ kind: fc.constant('abort' as const), which: fc.nat() }),
    fc.constant({ kind: 'step' as const }),
    fc.constant({ kind: 'step' as const }),
    fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 15 }) }),
  );

  it('keeps every rule under any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), async (ops, maxBatchSize) => {
        const scheduler = new ManualScheduler();
        const pending: { states: Gen[]; resolve: () => void }[] = [];
        const released = new Map<string, number>();
        const inits = new Map<string, number>();
        const violations: string[] = [];
        let queuedAtStep = 0;
        const batcher = new StreamingBatcher<string, string>({
          maxBatchSize,
          scheduler,
          continuous: {
            init: (input) => {
              inits.set(input, (inits.get(input) ?? 0) + 1);
              return { input, length: Number(input.split(':')[1]), at: 0 } satisfies Gen;
            },
            runStep: (states: Gen[]) => {
              if (states.length > maxBatchSize) violations.push(`step of ${states.length}`);
              queuedAtStep = batcher.stats().queued;
              if (states.length < maxBatchSize && queuedAtStep > 0) violations.push(`free place while ${queuedAtStep} waited`);
              return new Promise((resolve) => pending.push({ states, resolve: () => resolve(states.map(advance) as never) }));
            },
            release: (state: Gen) => released.set(state.input, (released.get(state.input) ?? 0) + 1),
          },
        });
        const calls: { input: string; length: number; controller: AbortController; chunks: string[]; settled: number; outcome?: string }[] = [];
        for (const o of ops) {
          if (o.kind === 'arrive') {
            const input = `r${calls.length}:${o.length}`;
            const controller = new AbortController();
            const call = { input, length: o.length, controller, chunks: [] as string[], settled: 0, outcome: undefined as string | undefined };
            calls.push(call);
            batcher.stream(input, { signal: controller.signal, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) }).subscribe({
              next: (c) => call.chunks.push(c),
              complete: () => ((call.settled += 1), (call.outcome = 'done')),
              error: (e: unknown) => ((call.settled += 1), (call.outcome = (e as Error).name)),
            });
          } else if (o.kind === 'abort' && calls.length > 0) {
            calls[o.which % calls.length].controller.abort(new Error('gone'));
          } else if (o.kind === 'step') {
            pending.shift()?.resolve();
          } else if (o.kind === 'wait') {
            scheduler.advance(o.ms);
          }
          await settleMicrotasks();
        }
        // Wind down: no more arrivals; run every step until nothing is left.
        for (let i = 0; i < 500 && (pending.length > 0 || batcher.stats().inFlight + batcher.stats().queued > 0); i++) {
          scheduler.advance(1);
          pending.shift()?.resolve();
          await settleMicrotasks();
        }
        await batcher.stop();
        expect(violations).toEqual([]);
        for (const call of calls) {
          expect(call.settled).toBe(1);
          const name = call.input.split(':')[0];
          const full = Array.from({ length: call.length }, (_, i) => `${name}${i + 1}`);
          // Its own chunks, in order: all of them when it completed, a prefix when it was cut short.
          if (call.outcome === 'done') expect(call.chunks).toEqual(full);
          else expect(full.slice(0, call.chunks.length)).toEqual(call.chunks);
          expect(released.get(call.input) ?? 0).toBe(inits.get(call.input) ?? 0);
          expect(inits.get(call.input) ?? 0).toBeLessThanOrEqual(1);
        }
        const s = batcher.stats();
        addsUp(s);
        expect(s).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0 });
      }),
      { numRuns: 150 },
    );
  });
});
