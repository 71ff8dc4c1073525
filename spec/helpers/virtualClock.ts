import type { VirtualTimeScheduler } from 'rxjs';

/** Lets every promise callback run: an immediate comes after the whole microtask queue. */
export const quiet = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Lets a producer's send go out: it writes what its callers issued during one turn of the event
 * loop at the end of that turn (a real one: setImmediate must not be faked), so this waits for
 * the turn after.
 *
 * @example
 * ```ts
 * const call = producer.run(1);
 * await afterSend(); // the request is in the transport now
 * ```
 */
export const afterSend = (): Promise<void> => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * Moves a `VirtualTimeScheduler` `ms` forward, one due action at a time, letting promises
 * settle after each (a remote face's replies travel on promise callbacks). Throws if actions
 * keep falling due at one time without the clock moving, so a spinning loop fails the test
 * instead of hanging it.
 *
 * @example
 * ```ts
 * const clock = new VirtualTimeScheduler();
 * await advanceVirtualClock(clock, 10); // windows, deadlines and claims due by then have run
 * ```
 */
export async function advanceVirtualClock(clock: VirtualTimeScheduler, ms: number): Promise<void> {
  const end = clock.now() + ms;
  await quiet();
  for (let ran = 0, at = clock.now(); ; ran++) {
    const next = clock.actions[0];
    if (next === undefined || next.delay > end) break;
    if (next.delay !== at) [at, ran] = [next.delay, 0];
    if (ran > 2_000) throw new Error(`the virtual clock is stuck at ${at}: actions keep falling due at once`);
    clock.actions.shift();
    clock.frame = next.delay;
    const error: unknown = next.execute(next.state, next.delay);
    if (error) throw error;
    await quiet();
  }
  clock.frame = end;
  await quiet();
}
