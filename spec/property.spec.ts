import fc from 'fast-check';
import { Subject } from 'rxjs';
import { Batcher, BatcherStoppedError, BatchResultError, QueueFullError, RequestTimeoutError, type BatchContext, type Settlement } from '../lib';
import { ManualScheduler } from './helpers/manualScheduler';

type Command =
  | { kind: 'run'; timeoutMs: number | undefined; withSignal: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'flush' }
  | { kind: 'finish'; pick: number; mode: 'ok' | 'throw' | 'itemErrors' | 'wrongLength' }
  | { kind: 'stop'; drain: boolean };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('run' as const), timeoutMs: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }), withSignal: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat(), mode: fc.constantFrom('ok' as const, 'throw' as const, 'itemErrors' as const, 'wrongLength' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const), drain: fc.boolean() }) },
);

const config = fc.record({
  maxBatchSize: fc.integer({ min: 1, max: 5 }),
  maxDelayMs: fc.integer({ min: 0, max: 6 }),
  maxConcurrentBatches: fc.integer({ min: 1, max: 3 }),
  maxQueueSize: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  partitions: fc.integer({ min: 1, max: 3 }),
  latencyTarget: fc.option(fc.integer({ min: 1, max: 20 }).map((p99Ms) => ({ p99Ms })), { nil: undefined }),
});

/** Drains the batcher, then answers the oldest batch and moves the clock 1 ms until nothing is left. */
function windDown(batcher: Pick<Batcher<unknown, unknown>, 'stop' | 'stats'>, finishOldest: () => void, scheduler: ManualScheduler): void {
  void batcher.stop({ drain: true });
  for (let guard = 0; guard < 1000 && batcher.stats().queued + batcher.stats().batchesInFlight > 0; guard++) {
    finishOldest();
    scheduler.advance(1);
  }
}

describe('property: random interleavings of run / abort / timeout / flush / stop / failing batches', () => {
  it('settles every request exactly once, keeps stats consistent, and never sends a gone request to runBatch', () => {
    fc.assert(
      fc.property(config, fc.array(command, { maxLength: 60 }), (cfg, commands) => {
        const scheduler = new ManualScheduler();
        const open: { inputs: number[]; ctx: BatchContext; result: Subject<number[]> }[] = [];
        const gone = new Set<number>(); // inputs settled before their batch started
        const terminal = new Map<number, number>(); // input -> terminal notifications
        const controllers = new Map<number, AbortController>();
        const batcher = new Batcher<number, number>({
          maxBatchSize: cfg.maxBatchSize,
          maxDelayMs: cfg.maxDelayMs,
          maxConcurrentBatches: cfg.maxConcurrentBatches,
          maxQueueSize: cfg.maxQueueSize,
          partitionBy: (x) => String(x % cfg.partitions),
          latencyTarget: cfg.latencyTarget,
          scheduler,
          runBatch: (inputs, ctx) => {
            expect(inputs.length).toBeGreaterThanOrEqual(1);
            expect(inputs.length).toBeLessThanOrEqual(cfg.maxBatchSize);
            expect(new Set(inputs.map((x) => x % cfg.partitions)).size).toBe(1);
            for (const x of inputs) expect(gone.has(x)).toBe(false);
            const result = new Subject<number[]>();
            open.push({ inputs: [...inputs], ctx, result });
            return result;
          },
        });
        const settlements: Settlement<number, number>[] = [];
        let resultsCompleted = false;
        const refusedAfterClose = new Set<number>(); // submitted after results$ completed: not on it
        batcher.results$.subscribe({ next: (s) => settlements.push(s), complete: () => (resultsCompleted = true) });

        let next = 0;
        const checkStats = () => {
          const s = batcher.stats();
          expect(s.submitted).toBe(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected);
          expect(s.batchesInFlight).toBeLessThanOrEqual(cfg.maxConcurrentBatches);
          if (cfg.maxQueueSize !== undefined) expect(s.queued).toBeLessThanOrEqual(cfg.maxQueueSize);
        };
        const finish = (pick: number, mode: string) => {
          const live = open.filter((b) => !b.result.closed && b.result.observed);
          if (live.length === 0) return;
          const batch = live[pick % live.length];
          if (mode === 'throw') batch.result.error(new Error('model crashed'));
          else if (mode === 'wrongLength') batch.result.next([]);
          else if (mode === 'itemErrors') batch.result.next(batch.inputs.map((x) => (x % 2 ? (new Error(`odd ${x}`) as never) : x * 10)));
          else batch.result.next(batch.inputs.map((x) => x * 10));
        };

        for (const c of commands) {
          switch (c.kind) {
            case 'run': {
              const x = next++;
              const controller = c.withSignal ? new AbortController() : undefined;
              if (controller) controllers.set(x, controller);
              terminal.set(x, 0);
              if (resultsCompleted) refusedAfterClose.add(x + 1);
              batcher.run$(x, { signal: controller?.signal, timeoutMs: c.timeoutMs }).subscribe({
                next: (y) => expect(y).toBe(x * 10),
                error: () => {
                  terminal.set(x, terminal.get(x)! + 1);
                  if (!open.some((b) => b.inputs.includes(x))) gone.add(x);
                },
                complete: () => terminal.set(x, terminal.get(x)! + 1),
              });
              break;
            }
            case 'abort': {
              const keys = [...controllers.keys()];
              if (keys.length > 0) controllers.get(keys[c.pick % keys.length])!.abort(new Error('client left'));
              break;
            }
            case 'advance':
              scheduler.advance(c.ms);
              break;
            case 'flush':
              batcher.flush();
              break;
            case 'finish':
              finish(c.pick, c.mode);
              break;
            case 'stop':
              void batcher.stop({ drain: c.drain });
              break;
          }
          checkStats();
        }

        windDown(batcher, () => finish(0, 'ok'), scheduler);
        checkStats();
        const final = batcher.stats();
        expect(final).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, stopped: true });
        expect(final.submitted).toBe(next);
        for (const [, count] of terminal) expect(count).toBe(1);
        const ids = settlements.map((s) => s.id).sort((a, b) => a - b);
        expect(ids).toEqual(Array.from({ length: next }, (_, i) => i + 1).filter((id) => !refusedAfterClose.has(id)));
        expect(scheduler.scheduledCount).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects queued requests with BatcherStoppedError on a plain stop, whatever came before', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 8 }), async (n, size) => {
        const batcher = new Batcher<number, number>({ maxBatchSize: size, maxDelayMs: 1000, runBatch: () => new Promise<number[]>(() => {}) });
        const calls = Array.from({ length: n }, (_, i) => batcher.run(i));
        void batcher.stop();
        // the first full batch went out before stop (and never finishes); the rest were queued
        const running = n >= size ? size : 0;
        expect(batcher.stats()).toMatchObject({ inFlight: running, queued: 0, rejected: n - running });
        const results = await Promise.allSettled(calls.slice(running));
        for (const r of results) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BatcherStoppedError);
        }
      }),
      { numRuns: 50 },
    );
  });
});

/** A call of the dedupe property: its input carries a key, few enough that many calls share one. */
interface Keyed {
  x: number;
  key: number;
}

type DedupeCommand =
  | { kind: 'run'; key: number; priority: number; timeoutMs: number | undefined; withSignal: boolean; unsubscribe: boolean }
  | { kind: 'abort'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'flush' }
  | { kind: 'finish'; pick: number; mode: 'ok' | 'throw' | 'itemErrors' | 'wrongLength' }
  | { kind: 'configure'; maxBatchSize: number; maxDelayMs: number; maxConcurrentBatches: number; maxBatchWeight: number }
  | { kind: 'stop'; drain: boolean };

// A stop is rare: everything after it is refused.
const dedupeCommand: fc.Arbitrary<DedupeCommand> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ kind: fc.constant('run' as const), key: fc.nat(2), priority: fc.integer({ min: -1, max: 3 }), timeoutMs: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }), withSignal: fc.boolean(), unsubscribe: fc.boolean() }) },
  { weight: 9, arbitrary: fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }) },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('finish' as const), pick: fc.nat(), mode: fc.constantFrom('ok' as const, 'ok' as const, 'throw' as const, 'itemErrors' as const, 'wrongLength' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('configure' as const), maxBatchSize: fc.integer({ min: 1, max: 5 }), maxDelayMs: fc.integer({ min: 0, max: 6 }), maxConcurrentBatches: fc.integer({ min: 1, max: 3 }), maxBatchWeight: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const), drain: fc.boolean() }) },
);

const dedupeConfig = fc.record({
  maxBatchSize: fc.integer({ min: 1, max: 5 }),
  maxDelayMs: fc.integer({ min: 0, max: 6 }),
  maxConcurrentBatches: fc.integer({ min: 1, max: 3 }),
  maxQueueSize: fc.option(fc.integer({ min: 2, max: 8 }), { nil: undefined, freq: 2 }),
  maxBatchWeight: fc.integer({ min: 2, max: 8 }),
  /** What each key weighs (identical inputs weigh the same); now and then more than a lowered budget. */
  weights: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }),
  partitions: fc.integer({ min: 1, max: 2 }),
  agingMs: fc.constantFrom(1, 4, Infinity),
});

describe('property: dedupeBy with duplicate keys, random weights, priorities, retuning, aborts, deadlines, failing batches and stops', () => {
  it('settles every call exactly once with its own key’s outcome, merges exactly the calls that find their key pending, and keeps every batch within its rules', () => {
    fc.assert(
      fc.property(dedupeConfig, fc.array(dedupeCommand, { maxLength: 60, size: 'medium' }), (cfg, commands) => {
        const scheduler = new ManualScheduler();
        const rules = { maxBatchSize: cfg.maxBatchSize, maxConcurrentBatches: cfg.maxConcurrentBatches, maxBatchWeight: cfg.maxBatchWeight };
        const partitionOf = (x: number): number => x % cfg.partitions;
        const open: { inputs: Keyed[]; result: Subject<number[]> }[] = [];
        const calls: { key: number; partition: number; terminal: number; value?: number; error?: unknown; controller?: AbortController }[] = [];
        const pending = (partition: number, key: number) => calls.some((c) => c.terminal === 0 && c.partition === partition && c.key === key);
        let inputsRun = 0;
        const batcher = new Batcher<Keyed, number>({
          maxBatchSize: cfg.maxBatchSize,
          maxDelayMs: cfg.maxDelayMs,
          maxConcurrentBatches: cfg.maxConcurrentBatches,
          maxQueueSize: cfg.maxQueueSize,
          maxBatchWeight: cfg.maxBatchWeight,
          agingMs: cfg.agingMs,
          weigh: (input) => cfg.weights[input.key],
          partitionBy: (input) => String(partitionOf(input.x)),
          dedupeBy: (input) => input.key,
          scheduler,
          runBatch: (inputs, ctx: BatchContext) => {
            inputsRun += inputs.length;
            expect(inputs.length).toBeGreaterThanOrEqual(1);
            expect(inputs.length).toBeLessThanOrEqual(rules.maxBatchSize);
            // Never over budget, but for an input alone that a lowered budget left too heavy.
            if (inputs.length > 1) expect(ctx.weight).toBeLessThanOrEqual(rules.maxBatchWeight);
            expect(ctx.weight).toBe(inputs.reduce((w, i) => w + cfg.weights[i.key], 0));
            expect(new Set(inputs.map((i) => partitionOf(i.x))).size).toBe(1);
            // One input per key and partition, and only inputs someone still waits for.
            expect(new Set(inputs.map((i) => i.key)).size).toBe(inputs.length);
            for (const i of inputs) expect(pending(partitionOf(i.x), i.key)).toBe(true);
            const result = new Subject<number[]>();
            open.push({ inputs: [...inputs], result });
            return result;
          },
        });
        const settlements: Settlement<Keyed, number>[] = [];
        let resultsCompleted = false;
        let refusedAfterClose = 0; // submitted after results$ completed: not on it
        batcher.results$.subscribe({ next: (s) => settlements.push(s), complete: () => (resultsCompleted = true) });

        const checkStats = () => {
          const s = batcher.stats();
          expect(s.submitted).toBe(s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected);
          expect(s.batchesInFlight).toBeLessThanOrEqual(Math.max(rules.maxConcurrentBatches, cfg.maxConcurrentBatches, 3));
          if (cfg.maxQueueSize !== undefined) expect(s.queued).toBeLessThanOrEqual(cfg.maxQueueSize);
          // Every input that ran came from a call that opened a slot (one that did not merge).
          expect(inputsRun).toBeLessThanOrEqual(s.submitted - s.merged);
        };
        const finish = (pick: number, mode: string) => {
          const live = open.filter((b) => !b.result.closed && b.result.observed);
          if (live.length === 0) return;
          const batch = live[pick % live.length];
          if (mode === 'throw') batch.result.error(new Error('model crashed'));
          else if (mode === 'wrongLength') batch.result.next([]);
          else if (mode === 'itemErrors') batch.result.next(batch.inputs.map((i) => (i.key % 2 ? (new Error(`odd ${i.key}`) as never) : i.key * 10)));
          else batch.result.next(batch.inputs.map((i) => i.key * 10));
        };

        const unsubscribers: (() => void)[] = [];
        for (const c of commands) {
          switch (c.kind) {
            case 'run': {
              const x = calls.length;
              const call: (typeof calls)[number] = { key: c.key, partition: partitionOf(x), terminal: 0 };
              if (c.withSignal) call.controller = new AbortController();
              const joins = pending(call.partition, c.key);
              calls.push(call);
              if (resultsCompleted) refusedAfterClose++;
              const merged = batcher.stats().merged;
              const sub = batcher.run$({ x, key: c.key }, { signal: call.controller?.signal, timeoutMs: c.timeoutMs, priority: c.priority }).subscribe({
                next: (y) => (call.value = y),
                error: (e: unknown) => {
                  call.terminal++;
                  call.error = e;
                },
                complete: () => call.terminal++,
              });
              // Refused calls settle at once; any other joins exactly when its key is pending in its partition.
              const refused = call.terminal > 0;
              expect(batcher.stats().merged - merged).toBe(!refused && joins ? 1 : 0);
              if (c.unsubscribe && c.withSignal) call.controller = undefined; // this one leaves by unsubscribing instead
              if (c.unsubscribe && call.controller === undefined && !refused) {
                // Leave it subscribed for now; an 'abort' command picks it through its subscription.
                unsubscribers.push(() => {
                  if (call.terminal === 0) {
                    sub.unsubscribe();
                    call.terminal++;
                    call.error = 'unsubscribed';
                  }
                });
              }
              break;
            }
            case 'abort': {
              const leavers = [
                ...calls.filter((k) => k.controller !== undefined && !k.controller.signal.aborted).map((k) => () => k.controller!.abort(new Error('client left'))),
                ...unsubscribers,
              ];
              if (leavers.length > 0) leavers[c.pick % leavers.length]();
              break;
            }
            case 'advance':
              scheduler.advance(c.ms);
              break;
            case 'flush':
              batcher.flush();
              break;
            case 'finish':
              finish(c.pick, c.mode);
              break;
            case 'configure':
              rules.maxBatchSize = c.maxBatchSize;
              rules.maxConcurrentBatches = c.maxConcurrentBatches;
              rules.maxBatchWeight = c.maxBatchWeight;
              batcher.configure({ maxBatchSize: c.maxBatchSize, maxDelayMs: c.maxDelayMs, maxConcurrentBatches: c.maxConcurrentBatches, maxBatchWeight: c.maxBatchWeight });
              break;
            case 'stop':
              void batcher.stop({ drain: c.drain });
              break;
          }
          checkStats();
        }

        windDown(batcher, () => finish(0, 'ok'), scheduler);
        checkStats();
        expect(batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, stopped: true, submitted: calls.length });
        for (const call of calls) {
          expect(call.terminal).toBe(1);
          // Each caller got its own key's outcome (never another slot's), or a reason of its own.
          if (call.error === undefined) expect(call.value).toBe(call.key * 10);
          else if (call.error instanceof Error && call.error.message.startsWith('odd ')) expect(call.error.message).toBe(`odd ${call.key}`);
          else {
            const known = call.error === 'unsubscribed' || (call.error instanceof Error && ['client left', 'model crashed'].includes(call.error.message))
              || call.error instanceof RequestTimeoutError || call.error instanceof BatcherStoppedError || call.error instanceof QueueFullError || call.error instanceof BatchResultError
              || (call.error instanceof RangeError && call.error.message.includes(`this input weighs ${cfg.weights[call.key]}, more than the whole \`maxBatchWeight\``));
            expect(known ? 'known' : String(call.error)).toBe('known');
          }
        }
        // results$ told each call's settlement once, with the call's own input.
        // (Calls made after it completed were refused straight to their callers: the last ones.)
        expect(settlements.map((s) => s.input.x).sort((a, b) => a - b)).toEqual(calls.map((_, x) => x).slice(0, calls.length - refusedAfterClose));
        expect(scheduler.scheduledCount).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

