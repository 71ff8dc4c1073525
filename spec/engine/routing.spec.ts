import type { Settlement } from '../../lib';
import { Batcher } from '../../lib';
import { Rejection } from '../../lib/core/request';
import { settleMicrotasks } from '../helpers/recording';

// The engine hands each settled call to its caller itself; the shared settlement stream behind
// `results$` exists only while someone listens. Neither changes what callers or listeners see.
describe('routing settlements: callers directly, results$ while subscribed', () => {
  const double = (xs: readonly number[]): number[] => xs.map((x) => x * 2);

  it('settles every caller with nobody on results$, and results$ sees what happens while subscribed', async () => {
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: double });
    await expect(Promise.all([batcher.run(1), batcher.run(2)])).resolves.toEqual([2, 4]);

    const seen: Settlement<number, number>[] = [];
    const sub = batcher.results$.subscribe((s) => seen.push(s));
    const also: number[] = [];
    const second = batcher.results$.subscribe((s) => also.push(s.id));
    await expect(Promise.all([batcher.run(3), batcher.run(4)])).resolves.toEqual([6, 8]);
    expect(seen).toEqual([
      { status: 'fulfilled', value: 6, id: 3, input: 3 },
      { status: 'fulfilled', value: 8, id: 4, input: 4 },
    ]);
    expect(also).toEqual([3, 4]);
    sub.unsubscribe();
    second.unsubscribe();

    await expect(Promise.all([batcher.run(5), batcher.run(6)])).resolves.toEqual([10, 12]);
    expect(seen).toHaveLength(2); // nobody listened to 5 and 6

    let completed = false;
    batcher.results$.subscribe({ next: (s) => seen.push(s), complete: () => (completed = true) });
    await expect(Promise.all([batcher.run(7), batcher.run(8)])).resolves.toEqual([14, 16]);
    expect(seen.map((s) => s.id)).toEqual([3, 4, 7, 8]);
    await batcher.stop();
    expect(completed).toBe(true);
  });

  it('results$ sees each settlement as it happens, and a failed call rejects once with its own reason', async () => {
    const boom = new Error('slot 0 failed');
    const batcher = new Batcher<number, number>({ maxBatchSize: 2, runBatch: (xs) => [boom, xs[1] * 2] });
    const order: string[] = [];
    batcher.results$.subscribe((s) => order.push(`results$ ${s.id} ${s.status}`));
    const first = batcher.run(1).then(
      () => order.push('caller 1 fulfilled'),
      (error: unknown) => order.push(`caller 1 rejected: ${(error as Error).message}`),
    );
    const second = batcher.run(2).then((value) => order.push(`caller 2 fulfilled: ${value}`));
    await Promise.all([first, second]);
    await settleMicrotasks();
    expect(order).toEqual([
      'results$ 1 rejected',
      'results$ 2 fulfilled',
      'caller 2 fulfilled: 4',
      'caller 1 rejected: slot 0 failed',
    ]);
    expect(batcher.stats()).toMatchObject({ succeeded: 1, failed: 1 });
  });

  it('Rejection rejects the promise it resolves with the reason it carries', async () => {
    const reason = new RangeError('no');
    await expect(new Promise((resolve) => resolve(new Rejection(reason)))).rejects.toBe(reason);
  });
});
