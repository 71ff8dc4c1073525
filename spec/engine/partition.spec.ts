/**
 * The FIFO queue of one `partitionBy` key (lib/core/partition.ts), tested directly: what it
 * hands out, in which order, how it skips requests that left, and that it forgets what it
 * handed out. One test at the end shows the engine keeping one such queue per key.
 */
import { Batcher } from '../../lib';
import { Partition } from '../../lib/core/partition';
import { CANCELLED, EngineRequest, QUEUED, RUNNING, TIMED_OUT } from '../../lib/core/request';
import { ManualScheduler } from '../helpers/manualScheduler';
import { recordingRunBatch } from '../helpers/recording';

class Req extends EngineRequest<number, number> {
  deliver(): void {}
}

/** A partition with `n` queued requests 0..n-1, as the engine fills it. */
function filled(n: number, owner = { windowExpired: jest.fn() }): { p: Partition<number, number>; rs: Req[] } {
  const p = new Partition<number, number>('k', owner);
  const rs: Req[] = [];
  for (let i = 0; i < n; i++) {
    const r = new Req(i);
    r.state = QUEUED;
    p.push(r);
    rs.push(r);
  }
  return { p, rs };
}

/** What the engine does when a queued request leaves on its own (aborted, timed out). */
function leave(p: Partition<number, number>, r: Req, state: number = CANCELLED): void {
  r.state = state;
  p.removed(r);
}

/** What the engine does with taken requests: they run, so they are no longer waiting. */
function takeInputs(p: Partition<number, number>, max: number): number[] {
  const taken = p.take(max);
  for (const r of taken) r.state = RUNNING;
  return taken.map((r) => r.input);
}

describe('Partition: the FIFO queue of one key', () => {
  it('hands out the oldest requests first, at most max at a time, and counts what still waits', () => {
    const { p } = filled(5);
    expect(p.live).toBe(5);
    expect(takeInputs(p, 2)).toEqual([0, 1]);
    expect(p.live).toBe(3);
    expect(takeInputs(p, 2)).toEqual([2, 3]);
    expect(takeInputs(p, 2)).toEqual([4]);
    expect(p.live).toBe(0);
    expect(takeInputs(p, 2)).toEqual([]);
  });

  it('skips requests that left the queue without being spliced out', () => {
    const { p, rs } = filled(6);
    leave(p, rs[1]);
    leave(p, rs[3], TIMED_OUT);
    expect(p.live).toBe(4);
    expect(takeInputs(p, 3)).toEqual([0, 2, 4]);
    expect(takeInputs(p, 3)).toEqual([5]);
  });

  it('oldest() is the first request still waiting, past any that left or were taken', () => {
    const { p, rs } = filled(4);
    expect(p.oldest()).toBe(rs[0]);
    leave(p, rs[0]);
    leave(p, rs[1]);
    expect(p.oldest()).toBe(rs[2]);
    takeInputs(p, 1);
    expect(p.oldest()).toBe(rs[3]);
    takeInputs(p, 1);
    expect(p.oldest()).toBeUndefined();
  });

  it('forgets everything once the last waiting request leaves, and starts afresh', () => {
    const { p, rs } = filled(3);
    for (const r of rs) leave(p, r);
    expect(p.live).toBe(0);
    expect(p.oldest()).toBeUndefined();
    // The cancelled ones are gone: a new request is the oldest and the only one taken.
    const fresh = new Req(99);
    fresh.state = QUEUED;
    p.push(fresh);
    expect(p.oldest()).toBe(fresh);
    expect(takeInputs(p, 10)).toEqual([99]);
  });

  it('keeps order in a long-lived queue, and lets go of what it handed out', () => {
    const { p } = filled(3000);
    const seen: number[] = [];
    const handedOut: Req[] = [];
    for (let i = 0; i < 16; i++) {
      const batch = p.take(100) as Req[];
      handedOut.push(...batch);
      seen.push(...batch.map((r) => r.input));
    }
    // A taken request no longer links to the queue, so the queue holds nothing it handed out.
    expect(handedOut.every((r) => r.nextInQueue === undefined)).toBe(true);
    expect(p.live).toBe(1400);
    for (let x = 3000; x < 3010; x++) {
      const r = new Req(x);
      r.state = QUEUED;
      p.push(r);
    }
    while (p.live > 0) seen.push(...takeInputs(p, 128));
    expect(seen).toEqual(Array.from({ length: 3010 }, (_, i) => i));
  });

  it('starts with no window, not due, and keeps its key and owner for the window timer', () => {
    const owner = { windowExpired: jest.fn() };
    const p = new Partition<number, number>('gpu-0', owner);
    expect(p).toMatchObject({ key: 'gpu-0', live: 0, timer: null, due: null, flushThrough: 0 });
    expect(p.owner).toBe(owner);
    expect(owner.windowExpired).not.toHaveBeenCalled();
  });

  it('in the engine: one queue per key, FIFO within a key, batches never mix keys', () => {
    const scheduler = new ManualScheduler();
    const [runBatch, calls, contexts] = recordingRunBatch<number, number>((xs) => xs.map((x) => x));
    const batcher = new Batcher<number, number>({
      runBatch, maxBatchSize: 3, maxDelayMs: 10, maxConcurrentBatches: Infinity, scheduler,
      partitionBy: (x) => (x % 2 === 0 ? 'even' : 'odd'),
    });
    for (let x = 0; x < 8; x++) void batcher.run(x);
    expect(calls).toEqual([[0, 2, 4], [1, 3, 5]]); // each key's queue filled up on its own
    scheduler.advance(10);
    expect(calls).toEqual([[0, 2, 4], [1, 3, 5], [6], [7]]);
    expect(contexts.map((c) => [c.partition, c.reason])).toEqual([['even', 'full'], ['odd', 'full'], ['even', 'delay'], ['odd', 'delay']]);
  });
});
