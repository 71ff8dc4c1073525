import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { aggregate, type Aggregate } from '../report/aggregate';
import { markdownTable, markdownTables } from '../report/markdown';
import { summarize } from '../report/summarize';
import { renderChart } from '../report/svg';
import { compileBench } from './build';
import type { BenchOptions } from './options';
import { topSelfTime } from '../report/cpuProfile';
import { inProcessCaseRunner } from './inProcess';
import { currentNode, type NodeRuntime } from './nodeRuntime';
import { buildPlan, FULL, QUICK, SMOKE, type BenchCase, type ModelBatchSizes, type PlanSizes } from './plan';
import { remoteRows, remoteTargets, runRemoteBench } from './remote';
import { runScenarios } from './runScenarios';
import { runWorker, workerCaseRunner } from './spawnWorker';

/**
 * What a finished run produced.
 *
 * @example
 * ```ts
 * const { summaryText, files } = await runBenchmarks(options, repoRoot, console.log);
 * ```
 */
export interface BenchRun {
  /** The tables and targets as Markdown, as printed at the end. */
  readonly summaryText: string;
  /** The files written (absolute paths). */
  readonly files: readonly string[];
  /** The object written as JSON. */
  readonly results: Record<string, unknown>;
  /** Every case's medians (also in `results.cases`). */
  readonly aggregates: readonly Aggregate[];
  /** The size scenario 1 reports (`n=…` and `heap n=…` groups). */
  readonly headlineCalls: number;
  /** The Node version the measurements ran on (without the `v`). */
  readonly node: string;
}

const SIZES: Readonly<Record<BenchOptions['mode'], PlanSizes>> = { full: FULL, quick: QUICK, smoke: SMOKE };

/**
 * The whole benchmark: compile, calibrate the real models' batch size (full mode), run every
 * selected scenario interleaved, run `bench/remote/run.ts` if present, then write the JSON
 * results and the SVG chart to `options.outDir`. In smoke mode: no compile, no calibration,
 * no remote part, every case in this process. `runtime` is the Node the worker processes run on
 * (`--node`): given, the files are named `<name>-node<major>.*` so runs on several versions sit
 * side by side; by default this process's Node and the plain names.
 *
 * @example
 * ```ts
 * const run = await runBenchmarks(parseBenchArgs(['--quick'], repoRoot), repoRoot, console.log);
 * ```
 */
export async function runBenchmarks(options: BenchOptions, repoRoot: string, progress: (line: string) => void, runtime?: NodeRuntime): Promise<BenchRun> {
  const startedAt = Date.now();
  const { mode } = options;
  const node = runtime ?? currentNode();
  if (mode === 'smoke' && node.binary !== process.execPath) throw new TypeError('smoke mode runs every case in this process: it cannot use another Node');
  const sizes = SIZES[mode];
  const repetitions = options.repetitions ?? sizes.repetitions;
  const machine = describeMachine(node);
  progress(`rx-batcher benchmarks (${mode} mode${options.headline ? ', scenario 1 alone' : ''}, ${repetitions} repetition${repetitions > 1 ? 's' : ''}) on ${machine.cpus}× ${machine.cpuModel}, Node ${machine.node}`);
  const selected = (id: string): boolean => options.only === undefined || options.only.includes(id);
  const profileDir = join(options.outDir, 'profiles');
  const profileName = (c: BenchCase, repetition: number): string => `${c.scenario}_${c.group}_${c.label}_rep${repetition}`.replace(/[^\w.-]+/g, '-');

  let modelBatch: ModelBatchSizes = { silero: sizes.defaultModelBatch, mlp: sizes.defaultModelBatch };
  let runCase = inProcessCaseRunner();
  if (mode === 'smoke') {
    progress('Smoke mode: every case in this process, at the smallest sizes (checks the code; measures nothing)');
  } else {
    progress('Compiling lib/ and bench/ with tsc (workers run plain node, no loader)…');
    const workerPath = compileBench(repoRoot, options.buildDir);
    if (selected('s5') && mode === 'full') modelBatch = await calibrateModelBatch(workerPath, repoRoot, sizes.modelBatchSizes, progress, node.binary);
    runCase = workerCaseRunner(
      workerPath,
      repoRoot,
      (c, repetition) => (options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${profileName(c, repetition)}.cpuprofile`] : []),
      node.binary,
    );
  }
  // --headline: scenario 1's own cases only (the headline size and heap per pending request at it).
  const headlineGroups = [`n=${sizes.headlineCalls}`, `heap n=${sizes.headlineCalls}`];
  const scenarios = buildPlan({ ...sizes, repetitions }, modelBatch, repoRoot)
    .filter((s) => selected(s.id))
    .map((s) =>
      options.headline && s.id === 's1-s2'
        ? { ...s, title: `Overhead: ${sizes.headlineCalls} concurrent calls and heap per pending request, trivial async model, batch 64`, cases: s.cases.filter((c) => headlineGroups.includes(c.group)) }
        : s,
    )
    // The soak and the HTTP loads run once: each takes long (an HTTP case about 25 s).
    .map((s) => (s.id === 's6' || s.id === 's8' ? s : { ...s, repetitions }));
  const raw = await runScenarios(scenarios, runCase, progress);

  const skippedBecause = mode === 'smoke' ? 'smoke mode' : options.nodes.length > 0 ? '--node: bench:remote runs on this machine’s Node' : options.headline ? '--headline' : '--skip-remote';
  let remote: { status: string; results?: unknown } = { status: `skipped (${skippedBecause})` };
  if (!options.skipRemote) {
    progress('\n== remote: bench/remote/run.ts');
    remote = await runRemoteBench(repoRoot, { quick: mode !== 'full', outDir: options.outDir, since: startedAt });
    progress(remote.status);
  }

  const rows = remoteRows(remote.results);
  const aggregates = aggregate(raw);
  const summary = summarize(aggregates, { headlineCalls: sizes.headlineCalls });
  // The scale-out goals (bench/remote/run.ts judges them) join the in-process ones.
  const targets = [...summary.targets, ...remoteTargets(remote.results)];
  const date = new Date().toISOString();
  const results: Record<string, unknown> = {
    title: 'rx-batcher against its peers and against the model’s own limit',
    date,
    mode,
    repetitions,
    durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    machine,
    rerun: rerunCommand(options, runtime),
    // Flat rows and titled tables: the docs site renders both.
    targets,
    // The scale-out rows join the titled tables, so the docs page shows them too.
    tables: rows === undefined ? summary.tables : [...summary.tables, { id: 'remote', title: 'Scale-out — bench/remote (brokers and worker processes on this machine)', rows }],
    modelBatchSizes: modelBatch,
    cases: aggregates,
    remote,
  };
  mkdirSync(options.outDir, { recursive: true });
  const base = `${mode === 'full' ? 'latest' : mode}${runtime !== undefined ? `-node${runtime.major}` : ''}`;
  const jsonFile = join(options.outDir, `${base}.json`);
  const svgFile = join(options.outDir, `${base}.svg`);
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(
    svgFile,
    renderChart(aggregates, {
      title: 'rx-batcher benchmarks',
      subtitle: `${date.slice(0, 10)} · ${machine.cpus} cores (${machine.cpuModel}) · Node ${machine.node} · medians of ${repetitions} interleaved repetitions${mode === 'full' ? '' : ` · ${mode.toUpperCase()} MODE (smoke test, not a measurement)`}`,
      headlineCalls: sizes.headlineCalls,
    }),
  );

  const hotSpots = options.cpuProf ? describeHotSpots(profileDir) : [];
  const summaryText = [
    ...hotSpots,
    markdownTables(summary.tables),
    ...(rows !== undefined ? [`#### Scale-out — bench/remote\n\n${markdownTable(rows)}`] : []),
    `#### Targets\n\n${markdownTable(targets)}`,
  ].join('\n\n');
  return { summaryText, files: [jsonFile, svgFile], results, aggregates, headlineCalls: sizes.headlineCalls, node: node.version };
}

/** The command that repeats this run, for the JSON. */
function rerunCommand(options: BenchOptions, runtime: NodeRuntime | undefined): string {
  const args = [
    ...(options.mode === 'full' ? [] : [`--${options.mode}`]),
    ...(options.headline ? ['--headline'] : options.only !== undefined ? ['--only', options.only.join(',')] : []),
    ...(options.repetitions !== undefined ? ['--reps', String(options.repetitions)] : []),
    ...(runtime !== undefined ? ['--node', runtime.major] : []),
  ];
  return args.length === 0 ? 'npm run bench' : `npm run bench -- ${args.join(' ')}`;
}

async function calibrateModelBatch(workerPath: string, repoRoot: string, batchSizes: readonly number[], progress: (line: string) => void, nodeBinary: string): Promise<ModelBatchSizes> {
  const chosen: Record<string, number> = {};
  for (const model of ['silero', 'mlp'] as const) {
    const metrics = await runWorker(workerPath, { kind: 'model-best', model, sizes: batchSizes, durationMs: 2000, repoRoot }, { cwd: repoRoot, nodeBinary });
    chosen[model] = typeof metrics.bestSize === 'number' ? metrics.bestSize : 64;
    progress(`Calibration: ${model} runs best at batch ${chosen[model]} (${Math.round(Number(metrics.bestPerSec))}/s); its batchers use maxBatchSize ${chosen[model]}`);
  }
  return chosen as unknown as ModelBatchSizes;
}

function describeHotSpots(profileDir: string): string[] {
  if (!existsSync(profileDir)) return [];
  return readdirSync(profileDir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort()
    .map((name) => {
      const top = topSelfTime(join(profileDir, name), 12);
      return `#### Hot spots: ${name} (self time)\n\n${markdownTable(top.map((t) => ({ 'self %': t.percent.toFixed(1), function: t.fn })))}`;
    });
}

function describeMachine(node: NodeRuntime): Record<string, string | number> {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    // The Node the measurements ran on (--node), which may not be the runner's own.
    node: node.version,
    os: `${platform()} ${release()}`,
    loadAverageAtStart: loadavg()[0].toFixed(2),
  };
}
