import type { BatchRules, ImplName } from '../impls';
import type { LatencyTargetOptions } from '../scenarios/latencyTarget';
import type { HttpOverloadOptions } from '../http/overload';
import type { SaturationOptions } from '../scenarios/saturation';
import type { StreamingOptions } from '../scenarios/streaming';

/**
 * The real models of scenario 5.
 *
 * @example
 * ```ts
 * const model: RealModelName = 'silero';
 * ```
 */
export type RealModelName = 'silero' | 'mlp';

/**
 * One measurement, run by `bench/worker.ts` in a fresh Node process. Plain JSON: the runner
 * passes it on the command line.
 *
 * @example
 * ```ts
 * const task: Task = { kind: 'throughput', impl: 'dataloader', n: 100_000, rules: { maxBatchSize: 64, maxDelayMs: 0 }, warmup: 10_000, rounds: 3 };
 * ```
 */
export type Task =
  /** Scenarios 1 and 2: n concurrent calls, trivial model; requests/s, ns per request, peak RSS. */
  | { readonly kind: 'throughput'; readonly impl: ImplName; readonly n: number; readonly rules: BatchRules; readonly warmup: number; readonly rounds: number }
  /** Scenarios 1 and 2: heap bytes per pending request, with a model that answers only after the measurement. */
  | { readonly kind: 'heap'; readonly impl: ImplName; readonly n: number; readonly rules: BatchRules }
  /** Scenario 3: open-loop arrivals at a constant rate against the 5 ms + 0.05 ms/item model. */
  | ({ readonly kind: 'saturation' } & SaturationOptions)
  /** Scenario 4: Poisson arrivals against the same model; wait in the batcher and end-to-end latency. */
  | {
      readonly kind: 'latency';
      readonly impl: ImplName;
      readonly ratePerSec: number;
      readonly durationMs: number;
      readonly rules: BatchRules;
      readonly overheadMs: number;
      readonly perItemMs: number;
      readonly seed: number;
    }
  /** Scenario 5: the model's own throughput on ready-made batches of each size (direct `session.run`). */
  | { readonly kind: 'model-best'; readonly model: RealModelName; readonly sizes: readonly number[]; readonly durationMs: number; readonly repoRoot: string }
  /** Scenario 5a: n concurrent single-input requests through an implementation. */
  | {
      readonly kind: 'model-burst';
      readonly model: RealModelName;
      readonly impl: ImplName;
      readonly n: number;
      readonly rules: BatchRules;
      readonly repoRoot: string;
      readonly pairedDirectMs: number;
      readonly rounds: number;
    }
  /** Scenario 5b: a closed loop of `clients` concurrent clients for `durationMs`. */
  | {
      readonly kind: 'model-closed';
      readonly model: RealModelName;
      readonly impl: ImplName;
      readonly clients: number;
      readonly durationMs: number;
      readonly rules: BatchRules;
      readonly repoRoot: string;
      readonly pairedDirectMs: number;
      readonly rounds: number;
    }
  /** Scenario 6: n requests at a steady rate through one rx-batcher, with aborts, timeouts and failures. */
  | { readonly kind: 'soak'; readonly n: number; readonly ratePerSec: number; readonly rules: BatchRules }
  /** Scenario 7: `latencyTarget` against fixed `maxDelayMs` settings, Poisson arrivals on the 5 ms + 0.05 ms/item model. */
  | ({ readonly kind: 'latency-target' } & LatencyTargetOptions)
  /** Scenario 8: open-loop HTTP load on the model server (or the floor) in a process of its own. */
  | ({ readonly kind: 'http-overload' } & HttpOverloadOptions)
  /** Scenario 9: streaming outputs, continuous batching or whole-batch streaming, on a simulated autoregressive model. */
  | ({ readonly kind: 'streaming' } & StreamingOptions);

/**
 * What a worker reports: named numbers (and a few flags, notes and per-size records), all plain JSON.
 *
 * @example
 * ```ts
 * const metrics: Metrics = { requestsPerSec: 512_000, peakRssMb: 130 };
 * ```
 */
export type Metrics = Record<string, number | string | boolean | number[] | Record<string, number>>;

/**
 * The prefix of the one stdout line on which a worker reports its {@link Metrics} as JSON.
 *
 * @example
 * ```ts
 * process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(metrics)}\n`);
 * ```
 */
export const RESULT_PREFIX = 'RESULT ';
