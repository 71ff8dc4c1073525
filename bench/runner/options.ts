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
  /** Only these scenarios (`s1-s2`, `s3`, `s4`, `s5`, `s6`); all by default. */
  readonly only: readonly string[] | undefined;
  /** Skip `bench/remote/run.ts` even when it exists (always skipped in smoke mode). */
  readonly skipRemote: boolean;
  /** Run workers under `node --cpu-prof`, profiles into `<outDir>/profiles/`, and print their top self-time functions. */
  readonly cpuProf: boolean;
}

/**
 * Usage text printed by `--help` and on bad arguments.
 *
 * @example
 * ```ts
 * console.log(USAGE);
 * ```
 */
export const USAGE = `usage: npm run bench -- [--quick | --smoke] [--out DIR] [--reps N] [--only s1-s2,s3,s4,s5,s6] [--skip-remote] [--cpu-prof]
  --quick        every scenario small, once, in worker processes (~1 minute; results go to .cache/bench/quick/)
  --smoke        every scenario at the smallest sizes in this process, no remote part: checks the
                 benchmark code works, in seconds (results go to .cache/bench/smoke/)
  --out DIR      write latest.json / latest.svg (quick.* / smoke.* in those modes) to DIR
                 (default: bench/results/ for a full run of every scenario, else a folder in .cache/bench/)
  --reps N       repetitions per scenario, interleaved (default 3; 1 with --quick or --smoke)
  --only LIST    run only these scenarios
  --skip-remote  do not run bench/remote/run.ts
  --cpu-prof     profile every worker (node --cpu-prof) into <out>/profiles/ and print the hot spots`;

const SCENARIO_IDS: readonly string[] = ['s1-s2', 's3', 's4', 's5', 's6'];

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
    else if (arg === '--cpu-prof') cpuProf = true;
    else throw new TypeError(`unknown argument "${arg}"\n${USAGE}`);
  }
  if (quick && smoke) throw new TypeError(`choose one of --quick and --smoke\n${USAGE}`);
  if (smoke && cpuProf) throw new TypeError(`--cpu-prof profiles worker processes; --smoke runs none\n${USAGE}`);
  const mode: BenchMode = smoke ? 'smoke' : quick ? 'quick' : 'full';
  const absolute = (p: string): string => (isAbsolute(p) ? p : resolve(p));
  const defaultOut =
    mode !== 'full' ? join(repoRoot, '.cache', 'bench', mode) : only !== undefined ? join(repoRoot, '.cache', 'bench', 'subset') : join(repoRoot, 'bench', 'results');
  return {
    mode,
    outDir: out !== undefined ? absolute(out) : defaultOut,
    buildDir: build !== undefined ? absolute(build) : join(repoRoot, '.cache', 'bench', `build-${process.pid}`),
    repetitions,
    only,
    skipRemote: skipRemote || smoke,
    cpuProf,
  };
}
