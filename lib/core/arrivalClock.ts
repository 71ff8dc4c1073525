import { asapScheduler, asyncScheduler, type SchedulerLike } from 'rxjs';

/**
 * The tick (whole ms since the engine started) at which each request arrives, read from the
 * clock once per run of arrivals instead of once per request.
 *
 * Requests arrive in runs: a loop of `run()` calls, or the callers a finished batch wakes, all
 * in one synchronous stretch of code. On the real clock a tick read at the first of a run
 * holds for the rest of it: it is dropped at the next microtask (the stretch has ended) and
 * after {@link READS_PER_CLOCK} arrivals (a long loop), so an arrival is dated at most that
 * many calls early, well under the tick's own millisecond. `Date.now()` costs 40–80 ns, a
 * sixth of a whole `run()` in a closed loop; this reads it once per run.
 *
 * On any other clock (a `TestScheduler`, a scheduler of your own, jest's fake `Date`) time can
 * move inside one synchronous stretch, so every arrival reads the clock.
 *
 * @example
 * ```ts
 * const arrivals = new ArrivalClock(scheduler, () => (scheduler.now() - epoch) | 0);
 * request.enqueuedAt = arrivals.tick();
 * ```
 */
export class ArrivalClock {
  private cached = 0;
  /** How many more arrivals may use `cached`; 0: read the clock. */
  private uses = 0;
  private readonly real: boolean;
  private readonly forget = (): void => {
    this.uses = 0;
  };

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly clock: () => number,
  ) {
    this.real = (scheduler === asyncScheduler || scheduler === asapScheduler) && NATIVE_DATE_NOW !== undefined;
  }

  /** The tick of an arrival now. */
  tick(): number {
    if (this.uses > 0) {
      this.uses--;
      return this.cached;
    }
    const tick = this.clock();
    // The scheduler reads Date.now() unless something replaced it (jest's fake timers) or
    // stands in for it (TestScheduler.run()): then it may move without a turn of the loop.
    if (this.real && Date.now === NATIVE_DATE_NOW && Math.abs(this.scheduler.now() - Date.now()) <= 1) {
      this.cached = tick;
      this.uses = READS_PER_CLOCK - 1;
      void RESOLVED.then(this.forget);
    }
    return tick;
  }
}

/** The most arrivals dated by one clock read (a run of calls of ~0.3–2 µs each: well under a millisecond). */
export const READS_PER_CLOCK = 64;

const RESOLVED = Promise.resolve();
/** `Date.now` as the runtime made it; undefined if something replaced it before this module loaded. */
const NATIVE_DATE_NOW = /\{\s*\[native code\]\s*\}\s*$/.test(Function.prototype.toString.call(Date.now)) ? Date.now : undefined;
