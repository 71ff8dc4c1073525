import { performance } from 'node:perf_hooks';

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
 * Needs `node --expose-gc`; fails with a clear message without it.
 *
 * @example
 * ```ts
 * const before = collectedHeapBytes();
 * ```
 */
export function collectedHeapBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('heap measurements need a forced GC: run the worker with `node --expose-gc`');
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
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
