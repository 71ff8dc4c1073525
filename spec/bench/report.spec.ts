import { median, percentile } from '../../bench/harness/statistics';
import { poissonArrivals, uniformArrivals } from '../../bench/harness/openLoop';
import { aggregate } from '../../bench/report/aggregate';
import { markdownTable } from '../../bench/report/markdown';
import { summarize } from '../../bench/report/summarize';
import { renderChart } from '../../bench/report/svg';
import { parseBenchArgs } from '../../bench/runner/options';
import type { RawResult } from '../../bench/runner/runScenarios';

// The report's arithmetic on made-up results: medians, ratios within one run, targets.
function raw(scenario: string, group: string, label: string, repetition: number, metrics: RawResult['metrics']): RawResult {
  return { scenario, group, label, config: `${label} config`, repetition, metrics };
}

describe('bench statistics', () => {
  it('takes medians and nearest-rank percentiles, ignoring non-finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile(Float64Array.from({ length: 100 }, (_, i) => i + 1), 99)).toBe(99);
    expect(percentile([], 99)).toBeNaN();
  });

  it('makes the same arrivals for the same seed, at the asked rate', () => {
    expect(uniformArrivals(1000, 3)).toEqual(Float64Array.from([0, 1, 2]));
    const a = poissonArrivals(2000, 10_000, 7);
    expect(a).toEqual(poissonArrivals(2000, 10_000, 7));
    expect(a.length).toBeGreaterThan(19_000);
    expect(a.length).toBeLessThan(21_000);
    expect(a.every((t, i) => i === 0 || t >= a[i - 1])).toBe(true);
  });
});

describe('bench report', () => {
  const results: RawResult[] = [];
  for (const repetition of [1, 2, 3]) {
    // rx-batcher beats DataLoader 1.2× in repetitions 1 and 3, loses in 2: the median says 1.2×.
    const rx = repetition === 2 ? 400_000 : 600_000;
    results.push(raw('s1-s2', 'n=10000', 'rx-batcher', repetition, { requestsPerSec: 2 * rx, nsPerRequest: 1e9 / (2 * rx), peakRssMb: 90 }));
    results.push(raw('s1-s2', 'n=10000', 'dataloader', repetition, { requestsPerSec: 1_000_000, nsPerRequest: 1000, peakRssMb: 80 }));
    results.push(raw('s1-s2', 'n=10000', 'unbatched', repetition, { requestsPerSec: 4_000_000, nsPerRequest: 250, peakRssMb: 70 }));
    results.push(raw('s1-s2', 'n=100000', 'rx-batcher', repetition, { requestsPerSec: rx, nsPerRequest: 1e9 / rx, peakRssMb: 100 }));
    results.push(raw('s1-s2', 'n=100000', 'dataloader', repetition, { requestsPerSec: 500_000, nsPerRequest: 2000, peakRssMb: 110 }));
    results.push(raw('s1-s2', 'n=100000', 'unbatched', repetition, { requestsPerSec: 2_000_000, nsPerRequest: 500, peakRssMb: 60 }));
    results.push(raw('s1-s2', 'heap n=100000', 'rx-batcher', repetition, { heapBytesPerPending: 290 }));
    results.push(raw('s1-s2', 'heap n=100000', 'dataloader', repetition, { heapBytesPerPending: 300 }));
  }
  results.push(raw('s1-s2', 'n=100000', 'batshit', 1, { error: 'worker crashed' }));

  it('folds repetitions into medians and keeps failed repetitions apart', () => {
    const rows = aggregate(results);
    const rx = rows.find((a) => a.group === 'n=100000' && a.label === 'rx-batcher')!;
    expect(rx.repetitions).toBe(3);
    expect(rx.median.requestsPerSec).toBe(600_000);
    expect(rx.samples.requestsPerSec).toEqual([600_000, 400_000, 600_000]);
    const batshit = rows.find((a) => a.label === 'batshit')!;
    expect({ repetitions: batshit.repetitions, errors: batshit.errors }).toEqual({ repetitions: 0, errors: ['worker crashed'] });
  });

  it('computes ratios within the run and judges the targets', () => {
    const { tables, targets } = summarize(aggregate(results), { headlineCalls: 100_000 });
    const s1 = tables.find((t) => t.id === 's1')!;
    expect(s1.rows.find((r) => r.implementation === 'rx-batcher')).toMatchObject({ 'requests/s': 600_000, '× DataLoader': '1.20', 'heap B/pending': 290 });
    expect(targets.find((t) => t.target.startsWith('rx-batcher requests/s'))).toMatchObject({ scenario: '1', met: 'yes' });
    expect(targets.find((t) => t.target.startsWith('heap per pending'))).toMatchObject({ met: 'yes' });
    // No 1M run: the scaling target cannot be judged.
    expect(targets.find((t) => t.scenario === '2')).toMatchObject({ met: 'n/a' });
    expect(tables.find((t) => t.id === 'errors')?.rows).toEqual([
      { scenario: 's1-s2', group: 'n=100000', implementation: 'batshit', failures: 1, first: 'worker crashed' },
    ]);
  });

  it('shows a closed loop against the model alone at the batch it can form, beside the best size', () => {
    const s5: RawResult[] = [
      raw('s5', 'mlp best', 'model-direct', 1, { bestPerSec: 1000, bestSize: 128, perSize: { '64': 900, '128': 1000 } }),
      raw('s5', 'mlp burst', 'rx-batcher', 1, { throughputPerSec: 950, meanBatchSize: 128, pairedDirectPerSec: 1000, pairedEfficiency: 0.95, maxAbsDiff: 0 }),
      raw('s5', 'mlp closed loop', 'rx-batcher', 1, {
        throughputPerSec: 870, meanBatchSize: 64, pairedDirectPerSec: 1000, pairedEfficiency: 0.87,
        formedBatchSize: 64, pairedFormedDirectPerSec: 900, pairedFormedEfficiency: 0.97, maxAbsDiff: 0,
      }),
    ];
    const { tables, targets } = summarize(aggregate(s5), { headlineCalls: 100_000 });
    const rows = tables.find((t) => t.id === 's5')!.rows;
    expect(rows.find((r) => r.load === '10k concurrent')).toMatchObject({ efficiency: '0.95', '÷ model at the batch formed': '0.95' });
    expect(rows.find((r) => r.load === '64 clients, closed loop')).toMatchObject({ efficiency: '0.87', '÷ model at the batch formed': '0.97 (at 64)' });
    expect(targets.find((t) => t.target.startsWith('mlp, closed loop'))?.measured).toContain('÷ the model alone at batch 64 around the same runs: 0.97');
  });

  it('holds rx-batcher to 1.2× DataLoader: faster, but by less, misses the target', () => {
    const close: RawResult[] = [
      raw('s1-s2', 'n=100000', 'rx-batcher', 1, { requestsPerSec: 550_000, nsPerRequest: 1e9 / 550_000, peakRssMb: 100 }),
      raw('s1-s2', 'n=100000', 'dataloader', 1, { requestsPerSec: 500_000, nsPerRequest: 2000, peakRssMb: 110 }),
    ];
    const { targets } = summarize(aggregate(close), { headlineCalls: 100_000 });
    expect(targets.find((t) => t.target.startsWith('rx-batcher requests/s'))).toMatchObject({ target: 'rx-batcher requests/s ≥ 1.2× DataLoader', met: 'no' });
  });

  it('renders Markdown tables and a standalone SVG chart', () => {
    expect(markdownTable([{ implementation: 'rx-batcher', 'requests/s': 600_000, note: 'a|b' }])).toBe(
      ['| implementation | requests/s | note |', '|---|---:|---|', '| rx-batcher | 600,000 | a\\|b |'].join('\n'),
    );
    const svg = renderChart(aggregate(results), { title: 'test <run>', subtitle: 'made up', headlineCalls: 100_000 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('test &lt;run&gt;');
    expect(svg).toContain('600k/s  (1.20× DataLoader)');
    expect(svg).not.toMatch(/NaN|undefined/);
  });
});

describe('bench command line', () => {
  it('writes to bench/results only for a full run of every scenario, and rejects unknown arguments', () => {
    const quick = parseBenchArgs(['--quick'], '/repo');
    expect({ mode: quick.mode, outDir: quick.outDir, skipRemote: quick.skipRemote }).toEqual({ mode: 'quick', outDir: '/repo/.cache/bench/quick', skipRemote: false });
    const smoke = parseBenchArgs(['--smoke'], '/repo');
    expect({ mode: smoke.mode, outDir: smoke.outDir, skipRemote: smoke.skipRemote }).toEqual({ mode: 'smoke', outDir: '/repo/.cache/bench/smoke', skipRemote: true });
    expect(parseBenchArgs([], '/repo')).toMatchObject({ mode: 'full', outDir: '/repo/bench/results' });
    expect(parseBenchArgs(['--only', 's3'], '/repo').outDir).toBe('/repo/.cache/bench/subset');
    expect(parseBenchArgs(['--only', 's3', '--out', '/elsewhere'], '/repo').outDir).toBe('/elsewhere');
    expect(() => parseBenchArgs(['--quick', '--smoke'], '/repo')).toThrow(/choose one of --quick and --smoke/);
    expect(() => parseBenchArgs(['--smoke', '--cpu-prof'], '/repo')).toThrow(/--smoke runs none/);
    expect(parseBenchArgs(['--only', 's1,s3'], '/repo').only).toEqual(['s1-s2', 's3']);
    expect(() => parseBenchArgs(['--only', 's10'], '/repo')).toThrow(/unknown scenario s10/);
    expect(() => parseBenchArgs(['--fast'], '/repo')).toThrow(/unknown argument "--fast"/);
    expect(() => parseBenchArgs(['--reps', '0'], '/repo')).toThrow(/--reps must be an integer ≥ 1/);
  });
});
