import type { Aggregate } from './aggregate';
import type { Row, Summary, Table, TargetRow } from './summarize';

/**
 * Scenario 7's tables and targets: per load, every fixed `maxDelayMs` and `latencyTarget` side
 * by side (p99, goodput, mean batch), and the slowdown run's two halves. "Best fixed setting"
 * for a load: the highest goodput; settings within 1% of it tie, and the tie goes to the larger
 * mean batch (the one a person tuning on that load would keep: as many answers in time, fewer
 * model calls).
 *
 * @example
 * ```ts
 * const { tables, targets } = summarizeLatencyTarget(aggregates);
 * ```
 */
export function summarizeLatencyTarget(aggregates: readonly Aggregate[]): Summary {
  const cases = aggregates.filter((a) => a.scenario === 's7');
  if (cases.length === 0) return { tables: [], targets: [] };
  const tables: Table[] = [];
  const targets: TargetRow[] = [];
  const value = (a: Aggregate | undefined, key: string): number => a?.median[key] ?? Number.NaN;
  const isTarget = (a: Aggregate): boolean => a.label.startsWith('latencyTarget');
  const groups = [...new Set(cases.map((a) => a.group))];

  const steady = groups.filter((g) => !g.includes('slower'));
  if (steady.length > 0) {
    const rows: Row[] = [];
    for (const group of steady) {
      for (const a of cases.filter((c) => c.group === group)) {
        rows.push({
          load: `${group.replace('load ', '')} (${round(value(a, 'arrivalPerSec'))}/s)`,
          setting: a.label,
          'p99 ms': p99Text(a, ''),
          'goodput/s': round(value(a, 'goodputPerSec')),
          'within target': percent(value(a, 'withinTarget')),
          'mean batch': fixed(value(a, 'meanBatchSize'), 1),
          'cut by target / delay / full': `${round(value(a, 'targetCuts'))} / ${round(value(a, 'delayCuts'))} / ${round(value(a, 'fullCuts'))}`,
        });
      }
      const fixedOnes = cases.filter((c) => c.group === group && !isTarget(c));
      const target = cases.find((c) => c.group === group && isTarget(c));
      if (target === undefined || fixedOnes.length === 0) continue;
      const objective = value(target, 'p99Ms');
      const feasible = fixedOnes.filter((c) => value(c, 'latencyP99Ms') <= objective);
      const best = bestOf(fixedOnes, '');
      const p99 = value(target, 'latencyP99Ms');
      targets.push({
        scenario: '7',
        target: `${group}: latencyTarget keeps p99 ≤ ${objective} ms where a fixed setting can`,
        measured: `${fixed(p99, 1)} ms (fixed settings under it: ${feasible.map((c) => c.label.replace('maxDelayMs ', '')).join(', ') || 'none'})`,
        met: feasible.length === 0 ? 'n/a' : p99 <= objective ? 'yes' : 'no',
      });
      const ratio = value(target, 'goodputPerSec') / value(best, 'goodputPerSec');
      targets.push({
        scenario: '7',
        target: `${group}: latencyTarget goodput ≥ 0.95 × the best fixed setting`,
        measured: `${fixed(ratio, 3)} (${round(value(target, 'goodputPerSec'))} vs ${best?.label}: ${round(value(best, 'goodputPerSec'))}/s; mean batch ${fixed(value(target, 'meanBatchSize'), 1)} vs ${fixed(value(best, 'meanBatchSize'), 1)})`,
        met: Number.isFinite(ratio) ? (ratio >= 0.95 ? 'yes' : 'no') : 'n/a',
      });
    }
    const objective = value(cases.find((c) => c.group === steady[0]), 'p99Ms');
    tables.push({ id: 's7', title: `Scenario 7 — latency target under steady load: latencyTarget ${objective} ms against fixed maxDelayMs (goodput = requests answered within ${objective} ms, per second)`, rows });
  }

  const slowdown = groups.find((g) => g.includes('slower'));
  if (slowdown !== undefined) {
    const run = cases.filter((c) => c.group === slowdown);
    const objective = value(run[0], 'p99Ms');
    tables.push({
      id: 's7b',
      title: `Scenario 7 — the model's batch time doubles halfway (${slowdown}), target ${objective} ms: each half`,
      rows: run.map((a) => ({
        setting: a.label,
        'p99 ms, 1st half': p99Text(a, 'first.'),
        'p99 ms, 2nd half': p99Text(a, 'second.'),
        'goodput/s, 1st': round(value(a, 'first.goodputPerSec')),
        'goodput/s, 2nd': round(value(a, 'second.goodputPerSec')),
        'mean batch, 1st': fixed(value(a, 'first.meanBatchSize'), 1),
        'mean batch, 2nd': fixed(value(a, 'second.meanBatchSize'), 1),
      })),
    });
    const target = run.find(isTarget);
    const best = bestOf(run.filter((c) => !isTarget(c)), 'first.');
    if (target !== undefined) {
      const [p1, p2] = [value(target, 'first.latencyP99Ms'), value(target, 'second.latencyP99Ms')];
      targets.push({
        scenario: '7',
        target: `model 2× slower halfway: latencyTarget keeps p99 ≤ ${objective} ms in both halves`,
        measured: `${fixed(p1, 1)} / ${fixed(p2, 1)} ms`,
        met: Number.isFinite(p1 + p2) ? (Math.max(p1, p2) <= objective ? 'yes' : 'no') : 'n/a',
      });
    }
    if (best !== undefined) {
      const [p1, p2] = [value(best, 'first.latencyP99Ms'), value(best, 'second.latencyP99Ms')];
      targets.push({
        scenario: '7',
        target: `model 2× slower halfway: the fixed setting best in the 1st half misses ${objective} ms in the 2nd (reference, not a target)`,
        measured: `${best.label}: ${fixed(p1, 1)} → ${fixed(p2, 1)} ms`,
        met: 'n/a',
      });
    }
  }
  return { tables, targets };
}

/** The highest goodput; within 1% of it, the larger mean batch. */
function bestOf(cases: readonly Aggregate[], prefix: string): Aggregate | undefined {
  const goodput = (a: Aggregate): number => a.median[`${prefix}goodputPerSec`] ?? Number.NaN;
  const top = Math.max(...cases.map(goodput).filter(Number.isFinite));
  const tied = cases.filter((a) => goodput(a) >= 0.99 * top);
  return tied.sort((a, b) => (b.median[`${prefix}meanBatchSize`] ?? 0) - (a.median[`${prefix}meanBatchSize`] ?? 0))[0];
}

/** p99, marked `≥` when more than 1% of requests were still unanswered at the cut-off (a lower bound). */
function p99Text(a: Aggregate, prefix: string): string {
  const p99 = a.median[`${prefix}latencyP99Ms`] ?? Number.NaN;
  const unanswered = a.median[`${prefix}unanswered`] ?? 0;
  const requests = a.median[`${prefix}requests`] ?? 0;
  return `${unanswered > 0.01 * requests ? '≥ ' : ''}${fixed(p99, 1)}`;
}

function round(x: number): number | string {
  return Number.isFinite(x) ? Math.round(x) : '–';
}

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function percent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–';
}
