/**
 * What every implementation under test looks like to a scenario: single calls in, one result
 * out per call, batches (or not) underneath.
 *
 * @example
 * ```ts
 * const client = createClient('dataloader', model, { maxBatchSize: 64, maxDelayMs: 0 });
 * const y = await client.call(1);
 * await client.close();
 * ```
 */
export interface BatchingClient<I, O> {
  /** One caller's request. */
  call(input: I, options?: CallOptions): Promise<O>;
  /** Releases timers and subscriptions; pending calls may be left unsettled. */
  close(): Promise<void> | void;
}

/**
 * Per-call options; only rx-batcher honours them (the peers have no per-call cancellation).
 *
 * @example
 * ```ts
 * await client.call(1, { signal: AbortSignal.timeout(100), timeoutMs: 50 });
 * ```
 */
export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/**
 * The model as the implementations see it: a batch function, and a single-input function for
 * the unbatched floor.
 *
 * @example
 * ```ts
 * const model: BenchModel<number, number> = {
 *   runBatch: async (xs) => xs.map((x) => x * 2),
 *   runOne: async (x) => x * 2,
 * };
 * ```
 */
export interface BenchModel<I, O> {
  readonly runBatch: (inputs: readonly I[]) => Promise<ArrayLike<O | Error>>;
  readonly runOne: (input: I) => Promise<O>;
}

/**
 * The batching rules a scenario asks for. Each implementation maps them onto its own options
 * (see `describeConfig` in `./index`).
 *
 * @example
 * ```ts
 * const rules: BatchRules = { maxBatchSize: 64, maxDelayMs: 2 };
 * ```
 */
export interface BatchRules {
  readonly maxBatchSize: number;
  /** 0 means "the same tick" where the implementation supports it, else its smallest window. */
  readonly maxDelayMs: number;
  /** rx-batcher only: `maxConcurrentBatches` (default 1, the library default). */
  readonly maxConcurrentBatches?: number;
}
