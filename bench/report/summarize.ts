import type { Aggregate } from './aggregate';
import { summarizeLatencyTarget } from './latencyTargetSummary';

/**
 * A flat table row: column name → value.
 *
 * @example
 * ```ts
 * const row: Row = { implementation: 'rx-batcher', 'requests/s': 512_000 };
 * ```
 */
export type Row = Record<string, string | number | boolean | null>;

/**
 * A titled table of flat rows, as printed and as written to the JSON.
 *
 * @example
 * ```ts
 * const table: Table = { id: 's1', title: 'Scenario 1', rows: [] };
 * ```
 */
export interface Table {
  readonly id: string;
  readonly title: string;
  readonly rows: readonly Row[];
}

/**
 * One target of the issue and whether this run met it.
 *
 * @example
 * ```ts
 * const t: TargetRow = { scenario: '1', target: '≥ 1.2× DataLoader', measured: '1.25×', met: 'yes' };
 * ```
 */
export interface TargetRow extends Row {
  scenario: string;
  target: string;
  measured: string;
  met: 'yes' | 'no' | 'n/a';
}

/**
 * Everything the report shows.
 *
 * @example
 * ```ts
 * const { tables, targets }: Summary = summarize(aggregates, { headlineCalls: 100_000 });
 * ```
 */
export interface Summary {
  readonly tables: readonly Table[];
  readonly targets: readonly TargetRow[];
}

const DISPLAY_N: Record<string, string> = { '1000': '1k', '10000': '10k', '100000': '100k', '1000000': '1M' };

/**
 * Turns the aggregates of a run into the report's tables and the issue's targets, with ratios
 * computed only between implementations measured in this same run.
 *
 * @example
 * ```ts
 * const { tables, targets } = summarize(aggregate(raw), { headlineCalls: 100_000 });
 * ```
 */
export function summarize(aggregates: readonly Aggregate[], context: { readonly headlineCalls: number }): Summary {
  const find = (scenario: string, group: string, label: string): Aggregate | undefined =>
    aggregates.find((a) => a.scenario === scenario && a.group === group && a.label === label);
  const value = (a: Aggregate | undefined, key: string): number => a?.median[key] ?? Number.NaN;
  const tables: Table[] = [];
  const targets: TargetRow[] = [];
  const target = (scenario: string, text: string, measured: string, met: boolean | undefined): void => {
    targets.push({ scenario, target: text, measured, met: met === undefined ? 'n/a' : met ? 'yes' : 'no' });
  };

  // Scenarios 1 and 2.
  const overhead = aggregates.filter((a) => a.scenario === 's1-s2');
  if (overhead.length > 0) {
    const labels = unique(overhead.map((a) => a.label));
    const sizes = unique(overhead.filter((a) => a.group.startsWith('n=')).map((a) => a.group.slice(2)));
    const heapSizes = unique(overhead.filter((a) => a.group.startsWith('heap n=')).map((a) => a.group.slice(7)));
    const headline = `n=${context.headlineCalls}`;
    const heapHeadline = `heap n=${heapSizes.includes(String(context.headlineCalls)) ? context.headlineCalls : heapSizes.at(-1)}`;
    const dl = find('s1-s2', headline, 'dataloader');
    const floor = find('s1-s2', headline, 'unbatched');
    tables.push({
      id: 's1',
      title: `Scenario 1 — overhead: ${context.headlineCalls.toLocaleString('en-US')} concurrent calls, trivial async model, batch 64`,
      rows: labels.map((label) => {
        const a = find('s1-s2', headline, label);
        return {
          implementation: label,
          'requests/s': round(value(a, 'requestsPerSec')),
          '× DataLoader': fixed(value(a, 'requestsPerSec') / value(dl, 'requestsPerSec'), 2),
          '× floor': fixed(value(a, 'requestsPerSec') / value(floor, 'requestsPerSec'), 2),
          'ns/request': round(value(a, 'nsPerRequest')),
          'peak RSS MB': round(value(a, 'peakRssMb')),
          'heap B/pending': round(value(find('s1-s2', heapHeadline, label), 'heapBytesPerPending')),
        };
      }),
    });
    tables.push({
      id: 's2',
      title: 'Scenario 2 — scaling: ns per request at n concurrent calls, heap bytes per pending request',
      rows: labels.map((label) => {
        const row: Row = { implementation: label };
        for (const n of sizes) row[`ns/req ${DISPLAY_N[n] ?? n}`] = round(value(find('s1-s2', `n=${n}`, label), 'nsPerRequest'));
        for (const n of heapSizes) row[`heap B/pending ${DISPLAY_N[n] ?? n}`] = round(value(find('s1-s2', `heap n=${n}`, label), 'heapBytesPerPending'));
        if (sizes.includes('1000000') && sizes.includes('10000')) {
          const at = (n: string, who: string): number => value(find('s1-s2', `n=${n}`, who), 'nsPerRequest');
          row['1M ÷ 10k per request'] = fixed(at('1000000', label) / at('10000', label), 2);
          row['1M ÷ 10k above the floor'] =
            label === 'unbatched' ? '' : fixed((at('1000000', label) - at('1000000', 'unbatched')) / (at('10000', label) - at('10000', 'unbatched')), 2);
        }
        return row;
      }),
    });
    const rx = find('s1-s2', headline, 'rx-batcher');
    const ratio = value(rx, 'requestsPerSec') / value(dl, 'requestsPerSec');
    target('1', 'rx-batcher requests/s ≥ 1.2× DataLoader', `${fixed(ratio, 2)}× (${round(value(rx, 'requestsPerSec'))} vs ${round(value(dl, 'requestsPerSec'))}/s)`, finite(ratio) ? ratio >= 1.2 : undefined);
    const rxHeap = value(find('s1-s2', heapHeadline, 'rx-batcher'), 'heapBytesPerPending');
    const dlHeap = value(find('s1-s2', heapHeadline, 'dataloader'), 'heapBytesPerPending');
    target('1', `heap per pending request ≤ DataLoader's (${heapHeadline.slice(5)})`, `${round(rxHeap)} B vs ${round(dlHeap)} B`, finite(rxHeap / dlHeap) ? rxHeap <= dlHeap : undefined);
    const rx1m = value(find('s1-s2', 'n=1000000', 'rx-batcher'), 'nsPerRequest');
    const rx10k = value(find('s1-s2', 'n=10000', 'rx-batcher'), 'nsPerRequest');
    const floor1m = value(find('s1-s2', 'n=1000000', 'unbatched'), 'nsPerRequest');
    const floor10k = value(find('s1-s2', 'n=10000', 'unbatched'), 'nsPerRequest');
    const dl1m = value(find('s1-s2', 'n=1000000', 'dataloader'), 'nsPerRequest');
    const dl10k = value(find('s1-s2', 'n=10000', 'dataloader'), 'nsPerRequest');
    target(
      '2',
      'rx-batcher per-request cost at 1M ≤ 1.5× at 10k',
      finite(rx1m)
        ? `${fixed(rx1m / rx10k, 2)}× (${round(rx1m)} vs ${round(rx10k)} ns); above the no-batching floor ${fixed((rx1m - floor1m) / (rx10k - floor10k), 2)}×; DataLoader ${fixed(dl1m / dl10k, 2)}×, the floor itself ${fixed(floor1m / floor10k, 2)}×`
        : 'not measured (1M is not in this mode)',
      finite(rx1m / rx10k) ? rx1m / rx10k <= 1.5 : undefined,
    );
  }

  // Scenario 3.
  const saturation = aggregates.filter((a) => a.scenario === 's3');
  if (saturation.length > 0) {
    tables.push({
      id: 's3',
      title: 'Scenario 3 — saturation: open-loop arrivals, model 5 ms + 0.05 ms/item, maxBatchSize 64, maxDelayMs 2',
      rows: saturation.map((a) => ({
        load: a.group,
        implementation: a.label,
        'arrivals/s': round(value(a, 'arrivalPerSec')),
        'served/s': round(value(a, 'throughputPerSec')),
        '% of arrivals': percent(value(a, 'throughputOfArrivals')),
        '% of ideal': percent(value(a, 'throughputOfIdeal')),
        'mean batch': fixed(value(a, 'meanBatchSize'), 1),
        'p50 ms': fixed(value(a, 'latencyP50Ms'), 1),
        'p99 ms': fixed(value(a, 'latencyP99Ms'), 1),
        'backlog growth/s': round(value(a, 'backlogGrowthPerSec')),
      })),
    });
    const groups = unique(saturation.map((a) => a.group));
    const [groupA, groupB] = [groups.find((g) => g.startsWith('a')), groups.find((g) => g.startsWith('b'))];
    if (groupA !== undefined) {
      const rx = find('s3', groupA, 'rx-batcher');
      const base = find('s3', groupA, 'rxjs-baseline');
      const keepsUp = value(rx, 'throughputOfArrivals') >= 0.95 && value(rx, 'backlogGrowthPerSec') <= 0.05 * value(rx, 'arrivalPerSec');
      const batchMs = 5 + 0.05 * value(rx, 'meanBatchSize');
      target(
        '3a',
        'rx-batcher keeps up at 3× unbatched capacity (≥ 95% of arrivals served, backlog not growing)',
        `${percent(value(rx, 'throughputOfArrivals'))} served, backlog ${round(value(rx, 'backlogGrowthPerSec'))}/s, mean batch ${fixed(value(rx, 'meanBatchSize'), 1)}, p99 ${fixed(value(rx, 'latencyP99Ms'), 1)} ms (one batch takes ${fixed(batchMs, 1)} ms; a request arriving just as a batch starts waits for it, which covers the 2 ms delay, then for its own: ≈ ${fixed(2 * batchMs, 1)} ms)`,
        rx === undefined ? undefined : keepsUp,
      );
      target('3a', 'design-card baseline falls behind (reference, not a target)', `${percent(value(base, 'throughputOfArrivals'))} served, mean batch ${fixed(value(base, 'meanBatchSize'), 2)}, backlog +${round(value(base, 'backlogGrowthPerSec'))}/s`, undefined);
    }
    if (groupB !== undefined) {
      const rx = find('s3', groupB, 'rx-batcher');
      const direct = find('s3', groupB, 'model-direct');
      target('3b', 'rx-batcher throughput ≥ 95% of ideal (64 items per 8.2 ms)', `${percent(value(rx, 'throughputOfIdeal'))} (${round(value(rx, 'throughputPerSec'))}/s; model fed directly: ${percent(value(direct, 'throughputOfIdeal'))})`, rx === undefined ? undefined : value(rx, 'throughputOfIdeal') >= 0.95);
      target('3b', 'rx-batcher mean batch ≥ 0.95 × 64', fixed(value(rx, 'meanBatchSize'), 1), rx === undefined ? undefined : value(rx, 'meanBatchSize') >= 0.95 * 64);
    }
  }

  // Scenario 4.
  const latency = aggregates.filter((a) => a.scenario === 's4');
  if (latency.length > 0) {
    tables.push({
      id: 's4',
      title: `Scenario 4 — latency at moderate load: Poisson ${latency[0].group.replace('poisson ', '')}, maxDelayMs 5 (wait = call → runBatch)`,
      rows: latency.map((a) => ({
        implementation: a.label,
        'wait p50 ms': fixed(value(a, 'waitP50Ms'), 2),
        'wait p99 ms': fixed(value(a, 'waitP99Ms'), 2),
        'wait max ms': fixed(value(a, 'waitMaxMs'), 2),
        'latency p50 ms': fixed(value(a, 'latencyP50Ms'), 1),
        'latency p99 ms': fixed(value(a, 'latencyP99Ms'), 1),
        'mean batch': fixed(value(a, 'meanBatchSize'), 1),
      })),
    });
    for (const a of latency.filter((x) => x.label.startsWith('rx-batcher'))) {
      target('4', `${a.label}: p99 wait in the batcher ≤ maxDelayMs + 1 ms = 6 ms`, `${fixed(value(a, 'waitP99Ms'), 2)} ms (end-to-end p99 ${fixed(value(a, 'latencyP99Ms'), 1)} ms)`, finite(value(a, 'waitP99Ms')) ? value(a, 'waitP99Ms') <= 6 : undefined);
    }
  }

  // Scenario 5.
  const real = aggregates.filter((a) => a.scenario === 's5');
  if (real.length > 0) {
    const rows: Row[] = [];
    let maxDiff = 0;
    for (const model of ['silero', 'mlp']) {
      const best = find('s5', `${model} best`, 'model-direct');
      const bestPerSec = value(best, 'bestPerSec');
      const curve = Object.entries(best?.records.perSize ?? {}).map(([size, perSec]) => `${size}: ${Math.round(perSec)}`).join(', ');
      rows.push({
        model,
        load: 'direct session.run',
        implementation: `model alone (${curve})`,
        'inputs/s': round(bestPerSec),
        'mean batch': value(best, 'bestSize'),
        efficiency: '1.00',
        '÷ model at the batch formed': '',
        'vs best of sizes': '1.00',
        '× unbatched': '',
        'max |Δ|': '',
      });
      for (const load of ['burst', 'closed loop']) {
        const group = `${model} ${load}`;
        const unbatched = find('s5', group, 'unbatched');
        for (const a of real.filter((x) => x.group === group)) {
          const perSec = value(a, 'throughputPerSec');
          const efficiency = value(a, 'pairedEfficiency');
          maxDiff = Math.max(maxDiff, value(a, 'maxAbsDiff'));
          rows.push({
            model,
            load: load === 'burst' ? '10k concurrent' : '64 clients, closed loop',
            implementation: a.label,
            'inputs/s': round(perSec),
            'mean batch': fixed(value(a, 'meanBatchSize'), 1),
            efficiency: fixed(efficiency, 2),
            // A closed loop of 64 clients forms batches of ≤ 64: its own ceiling is the model alone at 64.
            '÷ model at the batch formed': finite(value(a, 'pairedFormedEfficiency')) ? `${fixed(value(a, 'pairedFormedEfficiency'), 2)} (at ${value(a, 'formedBatchSize')})` : fixed(efficiency, 2),
            'vs best of sizes': fixed(perSec / bestPerSec, 2),
            '× unbatched': fixed(perSec / value(unbatched, 'throughputPerSec'), 2),
            'max |Δ|': value(a, 'maxAbsDiff').toExponential(1),
          });
          if (a.label === 'rx-batcher') {
            const at64 = best?.records.perSize?.['64'];
            const formed = value(a, 'pairedFormedEfficiency');
            const ceiling =
              load === 'closed loop' && at64 !== undefined
                ? `; 64 clients form batches of ≤ 64, and the model alone runs batch 64 at ${fixed(at64 / bestPerSec, 2)} of its best${finite(formed) ? `; ÷ the model alone at batch ${value(a, 'formedBatchSize')} around the same runs: ${fixed(formed, 2)}` : ''}`
                : '';
            target(
              '5',
              `${model}, ${load}: rx-batcher ≥ 0.9 × the model's best`,
              `${fixed(efficiency, 2)} (${round(perSec)}/s vs the model alone at batch ${a.config.match(/maxBatchSize: (\d+)/)?.[1] ?? '?'}: ${round(value(a, 'pairedDirectPerSec'))}/s; mean batch ${fixed(value(a, 'meanBatchSize'), 1)}; DataLoader ${fixed(value(find('s5', group, 'dataloader'), 'pairedEfficiency'), 2)}${ceiling})`,
              finite(efficiency) ? efficiency >= 0.9 : undefined,
            );
          }
        }
      }
    }
    tables.push({
      id: 's5',
      title: 'Scenario 5 — real models, onnxruntime-node, intraOpNumThreads 1 (efficiency = throughput ÷ the model alone at the best batch size, measured in the same process around each run)',
      rows,
    });
    target('5', 'every batched output equals the unbatched output (|Δ| < 1e-4)', `max |Δ| = ${maxDiff.toExponential(1)}`, finite(maxDiff) ? maxDiff < 1e-4 : undefined);
  }

  // Scenario 6.
  const soak = aggregates.find((a) => a.scenario === 's6');
  if (soak !== undefined) {
    const m = soak.median;
    tables.push({
      id: 's6',
      title: 'Scenario 6 — soak through one rx-batcher',
      rows: [
        {
          requests: round(m.requests),
          'achieved/s': round(m.achievedPerSec),
          succeeded: round(m.succeeded),
          aborted: round(m.aborted),
          'timed out': round(m.timedOut),
          failed: round(m.failed),
          'answered past deadline': round(m.answeredPastDeadline),
          'wrong or double': round(m.wrong + m.settledTwice + m.neverSettled),
          'heap start MB': fixed(m.heapStartMb, 1),
          'heap end MB': fixed(m.heapEndMb, 1),
          'heap change %': fixed(m.heapChangePct, 1),
          'timers left': round(m.timersWhileIdle + m.timersAfterStop),
          'listeners left': round(m.listenersLeft),
        },
      ],
    });
    target('6', 'every request settles exactly once', `${round(m.settledTotal)} of ${round(m.requests)} settled, ${round(m.settledTwice)} twice, ${round(m.neverSettled)} never, ${round(m.wrong)} wrongly`, m.settledTotal === m.requests && m.settledTwice === 0 && m.neverSettled === 0 && m.wrong === 0);
    target('6', 'heap after forced GC within 10% of its start', `${fixed(m.heapChangePct, 1)}% (${fixed(m.heapStartMb, 1)} → ${fixed(m.heapEndMb, 1)} MB)`, Math.abs(m.heapChangePct) <= 10);
    target('6', 'no timers or listeners left', `${round(m.timersWhileIdle)} timers idle, ${round(m.timersAfterStop)} after stop, ${round(m.listenersLeft)} listeners`, m.timersWhileIdle + m.timersAfterStop + m.listenersLeft === 0);
  }

  // Scenario 7.
  const latencyTarget = summarizeLatencyTarget(aggregates);
  tables.push(...latencyTarget.tables);
  targets.push(...latencyTarget.targets);
  const http = aggregates.filter((a) => a.scenario === 's8');
  if (http.length > 0) summarizeHttp(http, tables, target);
  const streaming = aggregates.filter((a) => a.scenario === 's9');
  if (streaming.length > 0) summarizeStreaming(streaming, tables, target);

  const failures = aggregates.filter((a) => a.errors.length > 0);
  if (failures.length > 0) {
    tables.push({
      id: 'errors',
      title: 'Failed measurements',
      rows: failures.map((a) => ({ scenario: a.scenario, group: a.group, implementation: a.label, failures: a.errors.length, first: a.errors[0].slice(0, 200) })),
    });
  }
  return { tables, targets };
}

/** Scenario 8's table and targets: what clients of the HTTP model server saw. */
function summarizeHttp(http: readonly Aggregate[], tables: Table[], target: (scenario: string, text: string, measured: string, met: boolean | undefined) => void): void {
  const value = (a: Aggregate | undefined, key: string): number => a?.median[key] ?? Number.NaN;
  const ms = (a: Aggregate, key: string): string => fixed(value(a, key), value(a, key) < 10 ? 1 : 0);
  const share = (a: Aggregate, key: string): string => percent(value(a, key) / value(a, 'requests'));
  tables.push({
    id: 's8',
    title: `Scenario 8 — HTTP under overload: examples/http-server (Silero VAD) behind fastify, open-loop load from an undici Pool in another process, every request awaited; latency from when the client issued it`,
    rows: http.map((a) => ({
      load: a.group,
      server: a.label,
      'issued/s': round(value(a, 'issuedPerSec')),
      answered: `${round(value(a, 'answered'))} of ${round(value(a, 'requests'))}`,
      'reset or hung': round(value(a, 'failed') + value(a, 'hung')),
      '200 %': share(a, 'ok'),
      '503 %': share(a, 'overloaded'),
      '504 %': share(a, 'late'),
      '503 p50 / p99 ms': `${ms(a, 'p50Ms503')} / ${ms(a, 'p99Ms503')}`,
      '200 p50 / p99 ms': `${ms(a, 'p50Ms200')} / ${ms(a, 'p99Ms200')}`,
      '200s past deadline': round(value(a, 'late200')),
      'from arrival: 503 / 200 p99 ms': `${ms(a, 'server.arrivalToAnswerP99Ms503')} / ${ms(a, 'server.arrivalToAnswerP99Ms200')}`,
      'RSS MB before → peak': `${round(value(a, 'rssBeforeMb'))} → ${round(value(a, 'rssPeakMb'))}`,
      'next request': Number.isFinite(value(a, 'afterStatus')) ? `${value(a, 'afterStatus')} in ${ms(a, 'afterMs')} ms` : '–',
      'server CPU s': fixed(value(a, 'serverCpuSeconds'), 1),
      'mean batch': fixed(value(a, 'server.meanBatchSize'), 1),
      'one batch ms': fixed(value(a, 'batchMs'), 1),
    })),
  });
  const groups = unique(http.map((a) => a.group));
  const overload = groups.find((g) => g.startsWith('overload'));
  const steady = groups.find((g) => g.startsWith('steady'));
  const find = (group: string | undefined, label: string): Aggregate | undefined => http.find((a) => a.group === group && a.label === label);
  const answeredAll = (a: Aggregate): boolean => value(a, 'answered') === value(a, 'requests') && value(a, 'failed') + value(a, 'hung') === 0;
  const recipe = find(overload, 'recipe');
  const floor = find(overload, 'floor');
  if (recipe !== undefined) {
    const machine = floor === undefined ? '' : `; the floor (fastify answering 503 at once) saw 503 p99 ${ms(floor, 'p99Ms503')} ms at ${round(value(floor, 'issuedPerSec'))}/s issued`;
    const issued = `${round(value(recipe, 'issuedPerSec'))}/s issued`;
    target('8', `${overload}: every request answered (no reset, no hang)`, `${round(value(recipe, 'answered'))} of ${round(value(recipe, 'requests'))} answered, ${round(value(recipe, 'failed'))} failed, ${round(value(recipe, 'hung'))} hung`, answeredAll(recipe));
    const inServer = `; from arrival at the server: ${ms(recipe, 'server.arrivalToAnswerP99Ms503')} ms`;
    target('8', `${overload}: 503 p99 ≤ 50 ms`, `${ms(recipe, 'p99Ms503')} ms (${issued}${inServer}${machine})`, finite(value(recipe, 'p99Ms503')) ? value(recipe, 'p99Ms503') <= 50 : undefined);
    const bound = value(recipe, 'timeoutMs') + value(recipe, 'batchMs');
    target('8', `${overload}: 200 p99 ≤ timeoutMs + one batch time`, `${ms(recipe, 'p99Ms200')} ms vs ${fixed(bound, 0)} ms (one full batch: ${fixed(value(recipe, 'batchMs'), 1)} ms; from arrival at the server: ${ms(recipe, 'server.arrivalToAnswerP99Ms200')} ms)`, finite(value(recipe, 'p99Ms200')) ? value(recipe, 'p99Ms200') <= bound : undefined);
    const growth = value(recipe, 'rssPeakMb') - value(recipe, 'rssBeforeMb');
    target('8', `${overload}: the server's RSS stays bounded (peak ≤ idle + 100 MB)`, `${round(value(recipe, 'rssBeforeMb'))} → ${round(value(recipe, 'rssPeakMb'))} MB`, finite(growth) ? growth <= 100 : undefined);
    target('8', `${overload}: a normal request right after the load is answered in < 100 ms`, `${value(recipe, 'afterStatus')} in ${ms(recipe, 'afterMs')} ms`, value(recipe, 'afterStatus') === 200 && value(recipe, 'afterMs') < 100);
  }
  const calm = find(steady, 'recipe');
  if (calm !== undefined) {
    target('8', `${steady}: every request answered, no 200 later than its deadline`, `${round(value(calm, 'answered'))} of ${round(value(calm, 'requests'))} answered, ${round(value(calm, 'late200'))} × 200 past ${value(calm, 'timeoutMs')} ms (200 p99 ${ms(calm, 'p99Ms200')} ms; from arrival at the server: ${ms(calm, 'server.arrivalToAnswerP99Ms200')} ms)`, answeredAll(calm) && value(calm, 'late200') === 0);
  }
}

/** Scenario 9's table and targets: continuous batching against whole-batch streaming. */
function summarizeStreaming(runs: readonly Aggregate[], tables: Table[], target: (scenario: string, text: string, measured: string, met: boolean | undefined) => void): void {
  const value = (a: Aggregate | undefined, key: string): number => a?.median[key] ?? Number.NaN;
  const find = (group: string | undefined, label: string): Aggregate | undefined => runs.find((a) => a.group === group && a.label === label);
  const groups = unique(runs.map((a) => a.group));
  tables.push({
    id: 's9',
    title: 'Scenario 9 — streaming outputs: continuous batching against whole-batch streaming (a step: 5 ms + 0.05 ms per active item, sleeping); backlog: chunks/s while requests wait; Poisson: time from the call to its first chunk',
    rows: runs.map((a) => {
      const whole = find(a.group, 'whole-batch');
      return {
        load: a.group,
        batching: a.label,
        requests: round(value(a, 'requests')),
        'mean length': fixed(value(a, 'meanLength'), 1),
        'chunks/s': a.group.includes('backlog') ? round(value(a, 'chunksPerSec')) : '–',
        '× whole-batch': a.group.includes('backlog') ? fixed(value(a, 'chunksPerSec') / value(whole, 'chunksPerSec'), 2) : '–',
        'first chunk p50 / p99 ms': a.group.includes('Poisson') ? `${fixed(value(a, 'ttfcP50Ms'), 1)} / ${fixed(value(a, 'ttfcP99Ms'), 1)}` : '–',
        'active per step': fixed(value(a, 'meanActivePerStep'), 1),
        steps: round(value(a, 'steps')),
        'joined between steps': round(value(a, 'admittedBetweenSteps')),
        'wrong chunk counts': round(value(a, 'wrongChunkCounts')),
      };
    }),
  });
  const ratio = (group: string | undefined): number => value(find(group, 'continuous'), 'chunksPerSec') / value(find(group, 'whole-batch'), 'chunksPerSec');
  const logNormal = groups.find((g) => g.startsWith('log-normal') && g.includes('backlog'));
  const uniform = groups.find((g) => g.startsWith('uniform'));
  const poisson = groups.find((g) => g.includes('Poisson'));
  const chunks = (group: string | undefined): string => `${round(value(find(group, 'continuous'), 'chunksPerSec'))} vs ${round(value(find(group, 'whole-batch'), 'chunksPerSec'))} chunks/s`;
  if (logNormal !== undefined) {
    target('9', 'log-normal outputs at saturation: continuous ≥ 4× the chunks/s of whole-batch streaming (the cost model alone: ≈ 4.6×)', `${fixed(ratio(logNormal), 2)}× (${chunks(logNormal)})`, finite(ratio(logNormal)) ? ratio(logNormal) >= 4 : undefined);
  }
  if (poisson !== undefined) {
    const [c, w] = [value(find(poisson, 'continuous'), 'ttfcP50Ms'), value(find(poisson, 'whole-batch'), 'ttfcP50Ms')];
    target('9', 'log-normal outputs at 80% of whole-batch capacity: p50 time to first chunk ≥ 10× lower with continuous batching (the cost model: ≈ 960 ms against ≈ 3 ms)', `${fixed(w / c, 1)}× (${fixed(c, 1)} ms vs ${fixed(w, 1)} ms)`, finite(w / c) ? w / c >= 10 : undefined);
  }
  if (uniform !== undefined) {
    target('9', 'uniform outputs 1–200 at saturation: continuous ÷ whole-batch chunks/s (reported; the cost model caps it near 1.6×)', `${fixed(ratio(uniform), 2)}× (${chunks(uniform)})`, undefined);
  }
  const wrong = runs.reduce((sum, a) => sum + value(a, 'wrongChunkCounts') + value(a, 'failed'), 0);
  target('9', 'every streamed request received exactly its own number of chunks and completed', `${round(wrong)} wrong or failed`, finite(wrong) ? wrong === 0 : undefined);
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function finite(x: number): boolean {
  return Number.isFinite(x);
}

function round(x: number | undefined): number | string {
  return x === undefined || !Number.isFinite(x) ? '–' : Math.round(x);
}

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function percent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '–';
}
