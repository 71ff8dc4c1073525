/**
 * Waits until `condition()` (which may be async) holds, checking about every millisecond,
 * failing with `what` if it does not within `timeoutMs`. For conditions that have no event to
 * wait on, such as "the server has queued the request".
 *
 * @example
 * ```ts
 * await waitFor(() => server.stats().queued === 1, 'the request to be queued');
 * ```
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * A promise with its resolve function outside, e.g. a gate a fake model waits on.
 *
 * @example
 * ```ts
 * const gate = deferred<void>();
 * const model = { runBatch: async (xs) => { await gate.promise; return xs; } };
 * gate.resolve();
 * ```
 */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
