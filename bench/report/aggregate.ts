import { median } from '../harness/statistics';
import type { RawResult } from '../runner/runScenarios';

/**
 * The repetitions of one case folded into medians.
 *
 * @example
 * ```ts
 * const rps = aggregate(raw)[0].median.requestsPerSec;
 * ```
 */
export interface Aggregate {
  readonly scenario: string;
  readonly group: string;
  readonly label: string;
  readonly config: string;
  /** Successful repetitions. */
  readonly repetitions: number;
  /** The median of every numeric metric over the repetitions. */
  readonly median: Readonly<Record<string, number>>;
  /** Boolean metrics: true only when every repetition said true. */
  readonly all: Readonly<Record<string, boolean>>;
  /** Per-key medians of record-valued metrics (e.g. throughput per batch size). */
  readonly records: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Every numeric metric per repetition, in run order (for the JSON). */
  readonly samples: Readonly<Record<string, readonly number[]>>;
  /** String metrics (notes) of the last successful repetition. */
  readonly notes: Readonly<Record<string, string>>;
  /** Messages of failed repetitions. */
  readonly errors: readonly string[];
}

/**
 * Folds raw results into one {@link Aggregate} per (scenario, group, label), keeping the
 * order in which cases first appeared.
 *
 * @example
 * ```ts
 * const aggregates = aggregate(raw);
 * aggregates[0].median.requestsPerSec;
 * ```
 */
export function aggregate(raw: readonly RawResult[]): Aggregate[] {
  const byKey = new Map<string, RawResult[]>();
  for (const result of raw) {
    const key = `${result.scenario}\u0000${result.group}\u0000${result.label}`;
    const list = byKey.get(key) ?? [];
    list.push(result);
    byKey.set(key, list);
  }
  return [...byKey.values()].map((results) => {
    const first = results[0];
    const ok = results.filter((r) => typeof r.metrics.error !== 'string');
    const samples: Record<string, number[]> = {};
    const flags: Record<string, boolean> = {};
    const recordSamples: Record<string, Record<string, number[]>> = {};
    const notes: Record<string, string> = {};
    for (const { metrics } of ok) {
      for (const [key, value] of Object.entries(metrics)) {
        if (typeof value === 'number') (samples[key] ??= []).push(value);
        else if (typeof value === 'boolean') flags[key] = (flags[key] ?? true) && value;
        else if (typeof value === 'string') notes[key] = value;
        else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          const target = (recordSamples[key] ??= {});
          for (const [k, v] of Object.entries(value)) (target[k] ??= []).push(v);
        }
      }
    }
    const medians = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    const records = Object.fromEntries(
      Object.entries(recordSamples).map(([k, byInner]) => [k, Object.fromEntries(Object.entries(byInner).map(([ik, v]) => [ik, median(v)]))]),
    );
    return {
      scenario: first.scenario,
      group: first.group,
      label: first.label,
      config: first.config,
      repetitions: ok.length,
      median: medians,
      all: flags,
      records,
      samples,
      notes,
      errors: results.filter((r) => typeof r.metrics.error === 'string').map((r) => String(r.metrics.error)),
    };
  });
}
