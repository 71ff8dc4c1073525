import type { BatchContext, RunBatch } from '../../lib';

/** A deferred promise, to finish a batch exactly when a test says so. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** DataLoader-style recorder: `calls` lists each batch's inputs, `contexts` each batch's context. */
export function recordingRunBatch<I, O>(
  fn: (inputs: readonly I[], ctx: BatchContext) => ReturnType<RunBatch<I, O>>,
): [RunBatch<I, O>, I[][], BatchContext[]] {
  const calls: I[][] = [];
  const contexts: BatchContext[] = [];
  const runBatch: RunBatch<I, O> = (inputs, ctx) => {
    calls.push([...inputs]);
    contexts.push(ctx);
    return fn(inputs, ctx);
  };
  return [runBatch, calls, contexts];
}

/** A runBatch whose batches finish only when the test resolves them, in any order. */
export function controlledRunBatch<I, O>(): {
  runBatch: RunBatch<I, O>;
  batches: { inputs: I[]; ctx: BatchContext; done: Deferred<O[]> }[];
} {
  const batches: { inputs: I[]; ctx: BatchContext; done: Deferred<O[]> }[] = [];
  return {
    batches,
    runBatch: (inputs, ctx) => {
      const done = deferred<O[]>();
      batches.push({ inputs: [...inputs], ctx, done });
      return done.promise;
    },
  };
}

/** Lets every pending promise callback run (no timers involved). */
export async function settleMicrotasks(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** Collects the outcome of a promise without letting it reject unhandled. */
export function outcome<T>(p: Promise<T>): { readonly value?: T; readonly error?: unknown; readonly settled: boolean } {
  const state: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => {
      state.value = v;
      state.settled = true;
    },
    (e: unknown) => {
      state.error = e;
      state.settled = true;
    },
  );
  return state;
}
