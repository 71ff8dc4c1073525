import { asapScheduler, asyncScheduler, queueScheduler } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Batcher } from '../../lib';
import { ArrivalClock, READS_PER_CLOCK } from '../../lib/core/arrivalClock';

/** A clock that counts its reads and returns the count, so a cached value is told apart. */
function countingClock(): { read: () => number; reads: () => number } {
  let reads = 0;
  return { read: () => ++reads, reads: () => reads };
}

describe('ArrivalClock (when each request arrived)', () => {
  it('on the real clock, reads it once per run of arrivals, at most READS_PER_CLOCK arrivals apart', () => {
    for (const scheduler of [asyncScheduler, asapScheduler]) {
      const clock = countingClock();
      const arrivals = new ArrivalClock(scheduler, clock.read);
      const ticks = Array.from({ length: 2 * READS_PER_CLOCK + 1 }, () => arrivals.tick());
      expect(clock.reads()).toBe(3);
      expect(ticks.slice(0, READS_PER_CLOCK).every((t) => t === 1)).toBe(true);
      expect(ticks[READS_PER_CLOCK]).toBe(2);
      expect(ticks[2 * READS_PER_CLOCK]).toBe(3);
    }
  });

  it('reads the clock again once the synchronous run has ended (the next microtask)', async () => {
    const clock = countingClock();
    const arrivals = new ArrivalClock(asyncScheduler, clock.read);
    expect([arrivals.tick(), arrivals.tick()]).toEqual([1, 1]);
    await Promise.resolve();
    expect([arrivals.tick(), arrivals.tick()]).toEqual([2, 2]);
  });

  it('on any other clock, reads it for every arrival (time may move inside one synchronous stretch)', () => {
    for (const scheduler of [queueScheduler, new TestScheduler(() => undefined)]) {
      const clock = countingClock();
      const arrivals = new ArrivalClock(scheduler, clock.read);
      expect([arrivals.tick(), arrivals.tick(), arrivals.tick()]).toEqual([1, 2, 3]);
    }
  });

  it('inside TestScheduler.run() (asyncScheduler stands in for virtual time), reads it for every arrival', () => {
    new TestScheduler(() => undefined).run(() => {
      const clock = countingClock();
      const arrivals = new ArrivalClock(asyncScheduler, clock.read);
      expect([arrivals.tick(), arrivals.tick()]).toEqual([1, 2]);
    });
  });

  describe('with jest fake timers (Date.now replaced)', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('reads the clock for every arrival', () => {
      const clock = countingClock();
      const arrivals = new ArrivalClock(asyncScheduler, clock.read);
      expect([arrivals.tick(), arrivals.tick()]).toEqual([1, 2]);
    });

    it('a batcher reports each request\'s own queue wait when callers arrive in timer callbacks of one advance', async () => {
      const batcher = new Batcher<number, number>({ runBatch: (xs) => xs.map((x) => x * 2), maxBatchSize: 3, maxDelayMs: 100 });
      const results: Promise<number>[] = [];
      for (const at of [0, 30, 70]) setTimeout(() => results.push(batcher.run(at)), at);
      jest.advanceTimersByTime(70); // the three callbacks run in one synchronous stretch
      await expect(Promise.all(results)).resolves.toEqual([0, 60, 140]);
      expect(batcher.stats().lastBatch?.queueWaitMs).toEqual([70, 40, 0]);
      await batcher.stop();
    });
  });
});
