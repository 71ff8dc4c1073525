import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

interface Pending {
  at: number;
  seq: number;
  cancelled: boolean;
  work: (this: SchedulerAction<unknown>, state?: unknown) => void;
  state: unknown;
}

/**
 * A virtual clock that only moves when a test says `advance(ms)`: due actions run in time
 * order (then in scheduling order). Unlike `TestScheduler.run`, it can be advanced in steps
 * from ordinary synchronous test code, which property tests need.
 */
export class ManualScheduler implements SchedulerLike {
  private time = 0;
  private seq = 0;
  private pending: Pending[] = [];
  /** How many delays beyond 2^31-1 ms were asked for (Node warns `TimeoutOverflowWarning` for each). */
  overflows = 0;

  /**
   * @param options.nodeTimerLimits - behave like Node's timers: a delay beyond 2^31-1 ms (or
   * not finite) runs after 1 ms instead.
   */
  constructor(private readonly options: { nodeTimerLimits?: boolean } = {}) {}

  now(): number {
    return this.time;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    if (!(delay <= 2 ** 31 - 1)) {
      this.overflows++;
      if (this.options.nodeTimerLimits) delay = 1;
    }
    const entry: Pending = {
      at: this.time + Math.max(0, delay),
      seq: this.seq++,
      cancelled: false,
      work: work as Pending['work'],
      state,
    };
    this.pending.push(entry);
    return new Subscription(() => {
      entry.cancelled = true;
    });
  }

  /** Actions scheduled and not yet run or cancelled. */
  get scheduledCount(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      let next: Pending | undefined;
      for (const p of this.pending) {
        if (p.at <= end && (next === undefined || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      }
      if (next === undefined) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      this.time = Math.max(this.time, next.at);
      next.work.call({ schedule: () => { throw new Error('rescheduling is not supported'); } } as never, next.state);
    }
    this.time = end;
  }
}
