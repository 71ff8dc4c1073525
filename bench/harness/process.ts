import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Milliseconds on the monotonic high-resolution clock.
 *
 * @example
 * ```ts
 * const t0 = now(); await work(); const ms = now() - t0;
 * ```
 */
export function now(): number {
  return performance.now();
}

/**
 * The process's peak resident set size so far, in MB.
 *
 * @example
 * ```ts
 * const peak = peakRssMb();
 * ```
 */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Runs a full garbage collection a few times and returns the heap then in use, in bytes.
 * Workers run with `node --expose-gc`; elsewhere (the in-process smoke run, jest) the flag is
 * switched on at run time and `gc` taken from a fresh context.
 *
 * @example
 * ```ts
 * const before = collectedHeapBytes();
 * ```
 */
export function collectedHeapBytes(): number {
  const gc = forcedGc();
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

let lateGc: (() => void) | undefined;

function forcedGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  if (lateGc === undefined) {
    setFlagsFromString('--expose-gc');
    lateGc = runInNewContext('gc') as () => void;
  }
  return lateGc;
}

/**
 * Resolves after `ms` milliseconds (a real timer).
 *
 * @example
 * ```ts
 * await sleep(5);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves on the next turn of the event loop, after pending I/O and timers got their chance.
 *
 * @example
 * ```ts
 * await nextTurn();
 * ```
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
