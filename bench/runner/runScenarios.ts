import type { Metrics } from '../harness/tasks';
import { headline, type BenchCase, type Scenario } from './plan';

/**
 * One worker's result: a case, its repetition number (from 1), and what it measured.
 *
 * @example
 * ```ts
 * const raw: RawResult[] = await runScenarios(scenarios, workerPath, repoRoot, console.log);
 * ```
 */
export interface RawResult {
  readonly scenario: string;
  readonly group: string;
  readonly label: string;
  readonly config: string;
  readonly repetition: number;
  readonly metrics: Metrics;
}

/**
 * Measures one case (one repetition of it): in a fresh worker process (`workerCaseRunner`)
 * or, for the smoke test, in this process (`inProcessCaseRunner`).
 *
 * @example
 * ```ts
 * const runCase: CaseRunner = (benchCase) => runTask(benchCase.task);
 * ```
 */
export type CaseRunner = (benchCase: BenchCase, repetition: number) => Promise<Metrics>;

/**
 * Runs every case of every scenario through `runCase`, `repetitions` times interleaved
 * (rep 1: A B C, rep 2: A B C, …) so machine drift hits every implementation alike. Reports
 * each finished measurement through `progress`. A case that throws is recorded as an error
 * and the run goes on.
 *
 * @example
 * ```ts
 * const raw = await runScenarios(scenarios, workerCaseRunner(workerPath, repoRoot), console.log);
 * ```
 */
export async function runScenarios(scenarios: readonly Scenario[], runCase: CaseRunner, progress: (line: string) => void): Promise<RawResult[]> {
  const runs = (benchCase: BenchCase, repetitions: number): number => Math.min(repetitions, benchCase.maxRepetitions ?? repetitions);
  const total = scenarios.reduce((sum, s) => sum + s.cases.reduce((n, c) => n + runs(c, s.repetitions), 0), 0);
  const started = Date.now();
  const results: RawResult[] = [];
  let done = 0;
  for (const scenario of scenarios) {
    progress(`\n== ${scenario.id}: ${scenario.title} (${scenario.cases.length} cases × ${scenario.repetitions} repetitions)`);
    for (let repetition = 1; repetition <= scenario.repetitions; repetition++) {
      for (const benchCase of scenario.cases) {
        if (repetition > runs(benchCase, scenario.repetitions)) continue;
        const metrics = await recordErrors(() => runCase(benchCase, repetition));
        done++;
        results.push({ scenario: scenario.id, group: benchCase.group, label: benchCase.label, config: benchCase.config, repetition, metrics });
        const elapsed = Math.round((Date.now() - started) / 1000);
        progress(
          `[${String(done).padStart(String(total).length)}/${total} ${formatDuration(elapsed)}] ${scenario.id} ${benchCase.group.padEnd(28)} ${benchCase.label.padEnd(36)} rep ${repetition}: ${headline(benchCase.task, metrics)}`,
        );
      }
    }
  }
  return results;
}

async function recordErrors(measure: () => Promise<Metrics>): Promise<Metrics> {
  try {
    return await measure();
  } catch (error) {
    // One broken measurement must not lose the rest of a long run: record it and go on.
    const message = error instanceof Error ? error.message : String(error);
    return { error: message.split('\n').slice(0, 6).join(' | ') };
  }
}

function formatDuration(seconds: number): string {
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}
