import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { markdownTable } from '../report/markdown';
import type { Row } from '../report/summarize';
import { ensureNode, type NodeRuntime } from './nodeRuntime';
import type { BenchOptions } from './options';
import { runBenchmarks, type BenchRun } from './runBenchmarks';

/**
 * `npm run bench -- --node 20,24 …`: one whole run per Node major version (each installed on
 * first use, see {@link ensureNode}), one after the other, each writing its own
 * `<name>-node<major>.json` / `.svg`; then scenario 1's ratios rx-batcher ÷ DataLoader per
 * version, printed and written to `<name>-nodes.json`. Ratios are taken within each version's
 * run (its implementations ran interleaved); absolute numbers of different versions were
 * measured minutes apart on a machine that may have drifted.
 *
 * @example
 * ```ts
 * const { summaryText, files } = await runAcrossNodes(parseBenchArgs(['--headline', '--node', '20,24'], repoRoot), repoRoot, console.log);
 * ```
 */
export async function runAcrossNodes(options: BenchOptions, repoRoot: string, progress: (line: string) => void): Promise<{ summaryText: string; files: string[] }> {
  // Install every version first: a failed install stops before minutes of measuring.
  const runtimes = options.nodes.map((major) => ensureNode(major, repoRoot, progress));
  const runs: Array<{ runtime: NodeRuntime; run: BenchRun }> = [];
  for (const runtime of runtimes) {
    const where = runtime.binary === process.execPath ? "this process's Node" : relative(repoRoot, runtime.binary);
    progress(`\n=== Node ${runtime.version} (${where}) ===`);
    runs.push({ runtime, run: await runBenchmarks(options, repoRoot, progress, runtime) });
  }
  const rows = runs.map(({ run }) => scenario1Ratios(run));
  const base = options.mode === 'full' ? 'latest' : options.mode;
  const file = join(options.outDir, `${base}-nodes.json`);
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        title: 'Scenario 1 per Node version: rx-batcher ÷ DataLoader',
        date: new Date().toISOString(),
        mode: options.mode,
        notes: [
          'Each version is one whole run (its implementations interleaved); ratios are taken within it. Absolute numbers of different versions were measured one after the other.',
          'requests/s: n concurrent calls, trivial async model, batch 64 (median round, median of the repetitions); heap: bytes per pending request at the same n.',
        ],
        rows,
        runs: runs.map(({ runtime, run }) => ({ node: runtime.version, file: relative(options.outDir, run.files[0]) })),
      },
      null,
      2,
    )}\n`,
  );
  const summaryText = [
    ...runs.map(({ runtime, run }) => `### Node ${runtime.version}\n\n${run.summaryText}`),
    `#### Scenario 1 per Node version: rx-batcher ÷ DataLoader (ratios within each version's run)\n\n${markdownTable(rows)}`,
  ].join('\n\n');
  return { summaryText, files: [...runs.flatMap(({ run }) => run.files), file] };
}

/**
 * Scenario 1 of one run as a row: rx-batcher and DataLoader requests/s and heap bytes per
 * pending request at the headline size, and their ratios.
 *
 * @example
 * ```ts
 * const row = scenario1Ratios(run); // { node: '24.…', 'requests/s rx-batcher ÷ DataLoader': 1.31, … }
 * ```
 */
export function scenario1Ratios(run: Pick<BenchRun, 'aggregates' | 'headlineCalls' | 'node'>): Row {
  const median = (group: string, label: string, key: string): number =>
    run.aggregates.find((a) => a.scenario === 's1-s2' && a.group === group && a.label === label)?.median[key] ?? Number.NaN;
  const n = run.headlineCalls;
  const rxRate = median(`n=${n}`, 'rx-batcher', 'requestsPerSec');
  const dlRate = median(`n=${n}`, 'dataloader', 'requestsPerSec');
  const rxHeap = median(`heap n=${n}`, 'rx-batcher', 'heapBytesPerPending');
  const dlHeap = median(`heap n=${n}`, 'dataloader', 'heapBytesPerPending');
  const num = (x: number, digits: number): number | string => (Number.isFinite(x) ? Number(x.toFixed(digits)) : '–');
  return {
    node: run.node,
    calls: n,
    'rx-batcher requests/s': num(rxRate, 0),
    'DataLoader requests/s': num(dlRate, 0),
    'requests/s rx-batcher ÷ DataLoader': num(rxRate / dlRate, 2),
    'rx-batcher heap B/pending': num(rxHeap, 0),
    'DataLoader heap B/pending': num(dlHeap, 0),
    'heap rx-batcher ÷ DataLoader': num(rxHeap / dlHeap, 2),
  };
}
