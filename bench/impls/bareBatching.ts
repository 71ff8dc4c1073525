import type { BatchingClient, BatchRules, BenchModel } from './types';

/**
 * The least a batching API that returns a native promise per call can do, as a floor for
 * scenario 1: per call, the input and the promise's `resolve` pushed onto arrays (a failed
 * model call resolves each caller with a rejected promise, so `reject` need not be kept); at
 * the end of the tick (one microtask) the arrays go to the model in slices of
 * `maxBatchSize`, and each caller is settled from its slice. No options, no validation, no
 * deadlines, no stop, no stats, no per-request errors: what is left is the promise, its
 * resolving functions and the array slots, which every such library pays. Not a library to
 * use; a measure of how close the others come to nothing.
 *
 * @example
 * ```ts
 * const client = bareBatchingClient(model, { maxBatchSize: 64, maxDelayMs: 0 });
 * await client.call(21);
 * ```
 */
export function bareBatchingClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  const size = rules.maxBatchSize;
  let inputs: I[] = [];
  let resolves: Array<(value: O | Promise<never>) => void> = [];
  let scheduled = false;
  const dispatch = (): void => {
    scheduled = false;
    const allInputs = inputs;
    const allResolves = resolves;
    inputs = [];
    resolves = [];
    for (let start = 0; start < allInputs.length; start += size) {
      const end = Math.min(allInputs.length, start + size);
      model.runBatch(allInputs.slice(start, end)).then(
        (outputs) => {
          for (let i = start; i < end; i++) allResolves[i](outputs[i - start] as O);
        },
        (error: unknown) => {
          for (let i = start; i < end; i++) allResolves[i](Promise.reject(error));
        },
      );
    }
  };
  const executor = (resolve: (value: O | Promise<never>) => void): void => {
    resolves.push(resolve);
  };
  return {
    call(input: I): Promise<O> {
      inputs.push(input);
      const promise = new Promise<O>(executor);
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(dispatch);
      }
      return promise;
    },
    close: () => undefined,
  };
}
