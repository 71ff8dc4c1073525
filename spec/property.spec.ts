import fc from 'fast-check';
import { Subject } from 'rxjs';
import { Batcher, BatcherStoppedError, type BatchContext, type Settlement } from '../lib';
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
});

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

        // Wind down: drain, then finish every batch until nothing is left.
        void batcher.stop({ drain: true });
        for (let guard = 0; guard < 1000 && batcher.stats().queued + batcher.stats().batchesInFlight > 0; guard++) {
          finish(0, 'ok');
          scheduler.advance(1);
        }
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
