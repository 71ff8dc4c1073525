import { seededRandom } from '../../examples/models/seededRandom';
import { now } from './process';

/**
 * Arrival times (ms from the start) of `count` requests at a constant rate.
 *
 * @example
 * ```ts
 * uniformArrivals(600, 3); // [0, 1.67, 3.33]
 * ```
 */
export function uniformArrivals(ratePerSec: number, count: number): Float64Array {
  const times = new Float64Array(count);
  for (let i = 0; i < count; i++) times[i] = (i * 1000) / ratePerSec;
  return times;
}

/**
 * Arrival times (ms from the start) of a Poisson process: exponential gaps with mean
 * `1000 / ratePerSec`, from a seeded generator so every implementation sees the same arrivals.
 *
 * @example
 * ```ts
 * const times = poissonArrivals(3900, 2000, 7);
 * ```
 */
export function poissonArrivals(ratePerSec: number, durationMs: number, seed: number): Float64Array {
  const random = seededRandom(seed);
  const times: number[] = [];
  let t = 0;
  for (;;) {
    t += (-Math.log(1 - random()) * 1000) / ratePerSec;
    if (t >= durationMs) break;
    times.push(t);
  }
  return Float64Array.from(times);
}

/**
 * Open-loop load: calls `issue(i)` for each request at (or just after) its arrival time,
 * whether or not earlier requests were answered. Timer-driven: a late tick issues every
 * request that became due meanwhile. Resolves after the last arrival.
 *
 * `maxPerTurn` caps how many requests one turn of the event loop issues; the rest follow on the
 * next turn (`setImmediate`), after pending I/O. Without it, a process that falls behind issues
 * its whole backlog in one synchronous burst and answers wait until the burst ends, so the
 * load generator itself stalls the system it measures (as a one-process producer at ~14k
 * remote requests/s did).
 *
 * @example
 * ```ts
 * await openLoop(uniformArrivals(600, 1800), (i) => void client.call(i));
 * await openLoop(uniformArrivals(14_000, 70_000), (i) => void producer.run(i), { maxPerTurn: 64 });
 * ```
 */
export function openLoop(arrivals: Float64Array, issue: (index: number, startMs: number) => void, options: { readonly maxPerTurn?: number } = {}): Promise<number> {
  const maxPerTurn = options.maxPerTurn ?? Infinity;
  return new Promise((resolve) => {
    const start = now();
    let next = 0;
    const tick = (): void => {
      const elapsed = now() - start;
      let issued = 0;
      while (next < arrivals.length && arrivals[next] <= elapsed && issued < maxPerTurn) {
        issue(next++, start);
        issued++;
      }
      if (next >= arrivals.length) resolve(start);
      else if (arrivals[next] <= now() - start) setImmediate(tick); // still behind: go on after pending I/O
      else setTimeout(tick, Math.max(1, arrivals[next] - (now() - start)));
    };
    tick();
  });
}
