/**
 * The engine's `fullWaitsForWindow` rule (lib/core/config.ts), tested on the engine itself with
 * a manual clock: by default a queue that reaches `maxBatchSize` is due at once; with the rule a
 * full queue waits for its window like any other and is cut into batches of `maxBatchSize` when
 * the window closes (DataLoader's rule, which `rx-batcher/dataloader` needs).
 */
import { BatchEngine } from '../../lib/core/batchEngine';
import type { BatchConfig } from '../../lib/core/config';
import { EngineRequest, SUCCEEDED } from '../../lib/core/request';
import { BATCHER_FACE, normalizeOptions } from '../../lib/options/normalizeOptions';
import type { BatchContext, BatcherOptions } from '../../lib';
import { ManualScheduler } from '../helpers/manualScheduler';
import { deferred, type Deferred } from '../helpers/recording';

class Call extends EngineRequest<number, number> {
  value: number | undefined;
  deliver(): void {
    if (this.state === SUCCEEDED) this.value = this.result as number;
  }
}

function engineWith(options: Partial<BatcherOptions<number, number>>, fullWaitsForWindow: boolean | undefined) {
  const clock = new ManualScheduler();
  const batches: { inputs: number[]; reason: BatchContext['reason']; done: Deferred<number[]> }[] = [];
  const config: BatchConfig<number, number> = {
    ...normalizeOptions<number, number>(
      { maxBatchSize: 2, scheduler: clock, ...options },
      (inputs: readonly number[], ctx: BatchContext) => {
        const done = deferred<number[]>();
        batches.push({ inputs: [...inputs], reason: ctx.reason, done });
        return done.promise;
      },
      BATCHER_FACE,
    ),
    ...(fullWaitsForWindow === undefined ? {} : { fullWaitsForWindow }),
  };
  const engine = new BatchEngine<number, number>(config);
  engine.settled$.subscribe({ next: (r) => r.deliver() });
  const submit = (...inputs: number[]) => inputs.map((x) => {
    const call = new Call(x);
    engine.submit(call);
    return call;
  });
  return { clock, batches, engine, submit };
}

const sizes = (batches: { inputs: number[] }[]) => batches.map((b) => b.inputs);

describe('engine: fullWaitsForWindow', () => {
  it('by default a queue that reaches maxBatchSize dispatches at once, inside the call that filled it', () => {
    const { batches, submit } = engineWith({ maxDelayMs: 10 }, undefined);
    submit(1);
    expect(batches).toHaveLength(0);
    submit(2);
    expect(sizes(batches)).toEqual([[1, 2]]);
    expect(batches[0].reason).toBe('full');
  });

  it('false is the default', () => {
    const { batches, submit } = engineWith({ maxDelayMs: 10 }, false);
    submit(1, 2);
    expect(sizes(batches)).toEqual([[1, 2]]);
  });

  it('with it, a full queue waits for its window, then is cut into batches of maxBatchSize (all at once with free slots)', () => {
    const { clock, batches, submit } = engineWith({ maxDelayMs: 10, maxConcurrentBatches: Infinity }, true);
    submit(1, 2, 3, 4, 5);
    expect(batches).toHaveLength(0);
    clock.advance(9);
    expect(batches).toHaveLength(0);
    clock.advance(1);
    expect(sizes(batches)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches.map((b) => b.reason)).toEqual(['full', 'full', 'delay']);
  });

  it('with maxBatchSize 1 every request waits for the window too', () => {
    const { clock, batches, submit } = engineWith({ maxBatchSize: 1, maxDelayMs: 0, maxConcurrentBatches: Infinity }, true);
    submit(1, 2, 3);
    expect(batches).toHaveLength(0);
    clock.advance(0);
    expect(sizes(batches)).toEqual([[1], [2], [3]]);
  });

  it('keeps late sealing: with busy slots the rest waits, and the next batch takes the oldest up to maxBatchSize', async () => {
    const { clock, batches, submit } = engineWith({ maxDelayMs: 10, maxConcurrentBatches: 1 }, true);
    const first = submit(1, 2, 3);
    clock.advance(10);
    expect(sizes(batches)).toEqual([[1, 2]]);
    submit(4); // arrives while the only slot is busy
    clock.advance(50);
    expect(sizes(batches)).toEqual([[1, 2]]);
    batches[0].done.resolve([10, 20]);
    await Promise.resolve();
    await Promise.resolve();
    expect(sizes(batches)).toEqual([[1, 2], [3, 4]]);
    expect(first.map((c) => c.value)).toEqual([10, 20, undefined]);
  });

  it('what is left after a cut waits for a window counted from its own oldest request, full or not', () => {
    const { clock, batches, submit } = engineWith({ maxDelayMs: 10, maxConcurrentBatches: Infinity }, true);
    submit(1);
    clock.advance(9);
    submit(2, 3, 4, 5);
    clock.advance(1);
    expect(sizes(batches)).toEqual([[1, 2]]); // 3, 4, 5 arrived at 9 ms: their window ends at 19 ms
    clock.advance(8);
    expect(sizes(batches)).toEqual([[1, 2]]);
    clock.advance(1);
    expect(sizes(batches)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('a window opens again for the first request after idle', () => {
    const { clock, batches, submit } = engineWith({ maxDelayMs: 5, maxConcurrentBatches: Infinity }, true);
    submit(1, 2);
    clock.advance(5);
    submit(3, 4);
    expect(sizes(batches)).toEqual([[1, 2]]);
    clock.advance(5);
    expect(sizes(batches)).toEqual([[1, 2], [3, 4]]);
  });
});
