/**
 * DeadlineQueue (lib/core/deadlines.ts), tested directly on a ManualScheduler: one timer for
 * every deadline, armed for the earliest, expiring in deadline order at exactly the virtual
 * time, skipping requests that settled meanwhile, cancelled when none is left, and clamped
 * to Node's 2^31-1 ms timer limit (a farther deadline is reached in steps).
 */
import { Batcher, RequestTimeoutError } from '../../lib';
import { DeadlineQueue, MAX_TIMER_MS } from '../../lib/core/deadlines';
import { CANCELLED, EngineRequest, QUEUED, RequestExtras, SUCCEEDED, TIMED_OUT } from '../../lib/core/request';
import { ManualScheduler } from '../helpers/manualScheduler';
import { outcome, settleMicrotasks } from '../helpers/recording';

class Req extends EngineRequest<string, string> {
  deliver(): void {}
}

/**
 * A queue on a manual clock whose expiry does what the engine's does: the request settles
 * (timed out) and the queue is told, which may clear it mid-fire.
 */
function setup(options: { nodeTimerLimits?: boolean } = {}) {
  const scheduler = new ManualScheduler({ nodeTimerLimits: options.nodeTimerLimits });
  const expired: { name: string; at: number }[] = [];
  /** How far the deadline clock reads behind the scheduler's. */
  const clock = { lagMs: 0 };
  const queue: DeadlineQueue<string, string> = new DeadlineQueue<string, string>(
    scheduler,
    () => scheduler.now() - clock.lagMs,
    (r) => {
      expired.push({ name: r.input, at: scheduler.now() });
      settle(r, TIMED_OUT);
    },
  );
  /** A queued request whose deadline is `deadline` (ms on the queue's clock). */
  const add = (name: string, deadline: number): Req => {
    const r = new Req(name);
    r.state = QUEUED;
    r.extras = new RequestExtras(undefined, deadline);
    r.extras.deadline = deadline;
    queue.add(r);
    return r;
  };
  /** The request settled some other way (or timed out): the queue hears once. */
  const settle = (r: Req, state: number = SUCCEEDED): void => {
    r.state = state;
    queue.settled();
  };
  return { scheduler, queue, expired, add, settle, clock };
}

describe('DeadlineQueue: one timer for every deadline', () => {
  it('expires requests in deadline order, each at exactly its virtual time, with a single timer', () => {
    const { scheduler, expired, add } = setup();
    add('c', 30);
    add('a', 10);
    add('b', 20);
    add('d', 30);
    expect(scheduler.scheduledCount).toBe(1);
    scheduler.advance(9);
    expect(expired).toEqual([]);
    scheduler.advance(1);
    expect(expired).toEqual([{ name: 'a', at: 10 }]);
    scheduler.advance(19);
    expect(expired).toHaveLength(2);
    scheduler.advance(1);
    expect(expired.slice(0, 2)).toEqual([{ name: 'a', at: 10 }, { name: 'b', at: 20 }]);
    // Equal deadlines expire in the same firing; a heap does not promise their order.
    expect(expired.slice(2).sort((x, y) => x.name.localeCompare(y.name))).toEqual([{ name: 'c', at: 30 }, { name: 'd', at: 30 }]);
    expect(scheduler.scheduledCount).toBe(0); // nothing left: no timer
  });

  it('re-arms its one timer for an earlier deadline added later', () => {
    const { scheduler, expired, add } = setup();
    add('late', 100);
    add('early', 5);
    expect(scheduler.scheduledCount).toBe(1); // the timer for 100 was cancelled, not kept beside
    scheduler.advance(5);
    expect(expired).toEqual([{ name: 'early', at: 5 }]);
    add('later', 200); // later than the armed one: no new timer
    expect(scheduler.scheduledCount).toBe(1);
    scheduler.advance(95);
    expect(expired.map((e) => e.name)).toEqual(['early', 'late']);
  });

  it('skips a request that settled another way, and cancels its timer when none is left', () => {
    const { scheduler, expired, add, settle } = setup();
    const first = add('answered', 10);
    add('aborted', 20);
    const kept = add('kept', 30);
    settle(first);
    scheduler.advance(10);
    expect(expired).toEqual([]);
    settle(kept, CANCELLED);
    scheduler.advance(20);
    expect(expired).toEqual([{ name: 'aborted', at: 20 }]);

    const { scheduler: s2, add: add2, settle: settle2 } = setup();
    const only = add2('only', 50);
    expect(s2.scheduledCount).toBe(1);
    settle2(only);
    expect(s2.scheduledCount).toBe(0); // an idle batcher holds no timer
  });

  it('trusts its timer when the clock reads a little earlier than the deadline', () => {
    // By the time the timer fires the deadline clock reads 1 ms behind it (a Node timer can
    // fire before Date.now() reaches its deadline): the request expires then, not 1 ms later.
    const { scheduler, expired, add, clock } = setup();
    add('x', 10);
    clock.lagMs = 1;
    scheduler.advance(10);
    expect(expired).toEqual([{ name: 'x', at: 10 }]);
  });

  it('never asks for a timer beyond 2^31-1 ms: a farther deadline is reached in steps, exactly', () => {
    const { scheduler, expired, add } = setup({ nodeTimerLimits: true });
    const far = 3 * MAX_TIMER_MS + 7;
    add('far', far);
    scheduler.advance(MAX_TIMER_MS);
    expect(expired).toEqual([]); // woke at the limit, found nothing due, re-armed
    expect(scheduler.scheduledCount).toBe(1);
    scheduler.advance(far - MAX_TIMER_MS - 1);
    expect(expired).toEqual([]);
    scheduler.advance(1);
    expect(expired).toEqual([{ name: 'far', at: far }]);
    expect(scheduler.overflows).toBe(0); // Node would have run each such timer after 1 ms
  });

  it('stays right when most entries settled early (the heap is compacted on the way)', () => {
    const { scheduler, expired, add, settle } = setup();
    const rs: Req[] = [];
    for (let i = 0; i < 200; i++) rs.push(add(`r${i}`, 1000 - i)); // added latest first
    for (let i = 0; i < 200; i++) if (i % 10 !== 0) settle(rs[i]);
    expect(expired).toEqual([]);
    scheduler.advance(1000);
    const want = rs.filter((_, i) => i % 10 === 0).reverse().map((r) => ({ name: r.input, at: r.extras!.deadline }));
    expect(expired).toEqual(want);
    expect(scheduler.scheduledCount).toBe(0);
  });

  it('in the engine: a deadline beyond the timer limit times the request out exactly then', async () => {
    const scheduler = new ManualScheduler({ nodeTimerLimits: true });
    const batcher = new Batcher<number, number>({
      maxBatchSize: 2, maxDelayMs: 10, scheduler, runBatch: () => new Promise<number[]>(() => undefined),
    });
    const timeoutMs = MAX_TIMER_MS + 1000;
    const call = outcome(batcher.run(1, { timeoutMs }));
    scheduler.advance(timeoutMs - 1);
    await settleMicrotasks();
    expect(call.settled).toBe(false);
    scheduler.advance(1);
    await settleMicrotasks();
    expect(call.error).toBeInstanceOf(RequestTimeoutError);
    expect(call.error).toMatchObject({ timeoutMs, phase: 'running' });
    expect(scheduler.overflows).toBe(0);
  });
});
