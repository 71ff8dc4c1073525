import { describeValue, prefix } from '../errors/describe.js';
import type { LatencyTarget } from '../types.js';

/** The one key of `latencyTarget`, and the example every message shows. */
const KEY = 'p99Ms';
const EXAMPLE = '{ p99Ms: 20 }';

/**
 * Checks the `latencyTarget` option: an object with exactly one key, `p99Ms`, a finite number
 * of milliseconds > 0. Returns a frozen copy (later changes to the caller's object change
 * nothing), or `undefined` when the option is absent. Throws a `TypeError` (wrong shape or
 * type) or a `RangeError` (a number out of range) naming the option and the value.
 *
 * @example
 * ```ts
 * checkLatencyTarget('ranker', { p99Ms: 20 }); // { p99Ms: 20 }
 * checkLatencyTarget('ranker', { p99: 20 });   // TypeError: … did you mean `p99Ms`?
 * ```
 */
export function checkLatencyTarget(name: string, value: unknown): LatencyTarget | undefined {
  if (value === undefined) return undefined;
  const fail = (kind: 'type' | 'range', message: string): never => {
    const text = `${prefix(name)} \`latencyTarget${message}`;
    throw kind === 'type' ? new TypeError(text) : new RangeError(text);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('type', `\` must be an object like ${EXAMPLE} (the latency 99% of requests should stay under, in ms), got ${describeValue(value)}.`);
  }
  for (const key in value as object) {
    if (Object.prototype.hasOwnProperty.call(value, key) && key !== KEY) {
      fail('type', `\` has no key \`${key}\`; did you mean \`${KEY}\`? It takes ${EXAMPLE}.`);
    }
  }
  const ms = (value as { p99Ms?: unknown }).p99Ms;
  if (ms === undefined) {
    fail('type', `\` needs \`${KEY}\`: the latency (queue wait + batch time) 99% of requests should stay under, in ms, e.g. ${EXAMPLE}.`);
  }
  const rule = `.${KEY}\` must be a finite number of milliseconds > 0, got ${describeValue(ms)}.`;
  if (typeof ms !== 'number') fail('type', rule);
  if (!Number.isFinite(ms) || (ms as number) <= 0) fail('range', rule);
  return Object.freeze({ p99Ms: ms as number });
}
