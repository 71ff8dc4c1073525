import { firstValueFrom, take, toArray } from 'rxjs';
import { Batcher, type Settlement } from '../lib';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';

describe('per-call context: run(x, { context })', () => {
  it('runBatch sees each input’s context in ctx.contexts, and results$ carries it', async () => {
    const seen: unknown[][] = [];
    const batcher = new Batcher<number, number>({
      maxBatchSize: 8,
      runBatch: (xs, ctx) => (seen.push([...ctx.contexts]), xs.map((x) => (x === 3 ? new Error('three') : x * 2))),
    });
    const settlements = firstValueFrom(batcher.results$.pipe(take(3), toArray()));
    const calls = [
      batcher.run(1, { context: { traceId: 'a1' } }),
      batcher.run(2),
      batcher.run(3, { context: 'tenant-7' }),
    ];
    await Promise.allSettled(calls);
    expect(seen).toEqual([[{ traceId: 'a1' }, undefined, 'tenant-7']]);
    const s: Settlement<number, number>[] = await settlements;
    expect(s).toEqual([
      { status: 'fulfilled', value: 2, id: 1, input: 1, context: { traceId: 'a1' } },
      { status: 'fulfilled', value: 4, id: 2, input: 2 },
      { status: 'rejected', reason: new Error('three'), id: 3, input: 3, context: 'tenant-7' },
    ]);
    expect('context' in s[1]).toBe(false); // absent, not undefined, when the call gave none
  });

  it('run$ takes it too', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: (xs, ctx) => xs.map((x, i) => x + String(ctx.contexts[i]).length) });
    await expect(firstValueFrom(batcher.run$(5, { context: 'abc' }))).resolves.toBe(8);
  });

  it('names the per-call option for people who bring another name', async () => {
    const batcher = new Batcher<number, number>({ name: 'c', maxBatchSize: 2, runBatch: (xs) => [...xs] });
    await expect(batcher.run(1, { ctx: 'x' } as never)).rejects.toThrow('[rx-batcher] "c": run(input, options): unknown option `ctx`; did you mean `context`?');
    await expect(batcher.run(1, { traceId: 'x' } as never)).rejects.toThrow('did you mean `context`?');
  });

  it('travels across a broker: the worker sees the producer’s contexts, encoded by the codec', async () => {
    const t = memoryTransport();
    const seen: unknown[] = [];
    const worker = await serveBatches<number, number>(t, 'ctx', (xs, ctx) => (seen.push(...ctx.contexts), xs.map((x) => x + 1)), { maxBatchSize: 8 });
    const p = remoteBatcher<number, number>(t, 'ctx');
    await expect(Promise.all([p.run(1, { context: { user: 'ada', at: new Date(0) } }), p.run(2)])).resolves.toEqual([2, 3]);
    expect(seen).toEqual([{ user: 'ada', at: new Date(0) }, undefined]);
    const unencodable = await p.run(3, { context: () => 'a function' }).catch((e: Error) => e);
    expect(unencodable).toBeInstanceOf(TypeError);
    expect((unencodable as Error).message).toContain("the codec could not encode this call's `context`");
    await p.stop();
    await worker.stop();
  });
});
