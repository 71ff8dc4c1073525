import { bufferTime, concatMap, filter, Subject, type Subscription } from 'rxjs';
import type { BatchingClient, BatchRules, BenchModel } from './types';

interface Pending<I, O> {
  readonly id: number;
  readonly input: I;
  resolve(value: O): void;
  reject(reason: unknown): void;
}

/**
 * The design card's hand-written RxJS batcher, exactly: `Subject` → `bufferTime(d, null, n)`
 * → `filter(non-empty)` → `concatMap(runBatch)` → one subscriber that routes each result to
 * its caller through a `Map` by request id. A failed batch fails its own callers only (caught
 * inside the `concatMap` inner). `bufferTime` needs a window: 1 ms when the rules ask for the
 * same tick.
 *
 * @example
 * ```ts
 * const client = rxjsBaselineClient(model, { maxBatchSize: 64, maxDelayMs: 2 });
 * ```
 */
export function rxjsBaselineClient<I, O>(model: BenchModel<I, O>, rules: BatchRules): BatchingClient<I, O> {
  const requests = new Subject<Pending<I, O>>();
  const waiting = new Map<number, Pending<I, O>>();
  let nextId = 0;
  const window = rules.maxDelayMs > 0 ? rules.maxDelayMs : 1;
  const subscription: Subscription = requests
    .pipe(
      bufferTime(window, null, rules.maxBatchSize),
      filter((batch) => batch.length > 0),
      concatMap(async (batch) => {
        try {
          const outputs = await model.runBatch(batch.map((request) => request.input));
          return batch.map((request, i) => ({ id: request.id, ok: !(outputs[i] instanceof Error), value: outputs[i] as unknown }));
        } catch (error) {
          return batch.map((request) => ({ id: request.id, ok: false, value: error as unknown }));
        }
      }),
    )
    .subscribe((results) => {
      for (const result of results) {
        const request = waiting.get(result.id);
        if (request === undefined) continue;
        waiting.delete(result.id);
        if (result.ok) request.resolve(result.value as O);
        else request.reject(result.value);
      }
    });
  return {
    call: (input) =>
      new Promise<O>((resolve, reject) => {
        const request: Pending<I, O> = { id: nextId++, input, resolve, reject };
        waiting.set(request.id, request);
        requests.next(request);
      }),
    close: () => subscription.unsubscribe(),
  };
}
