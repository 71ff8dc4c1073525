import { runTask } from '../worker';
import type { CaseRunner } from './runScenarios';

/**
 * Measures each case in this process, one after another: what `--smoke` uses to show in seconds
 * that every scenario's code runs and reports well-formed, correct results. Its numbers are not
 * measurements (one shared, warm process; the cases' node flags are not applied).
 *
 * @example
 * ```ts
 * const raw = await runScenarios(buildPlan(SMOKE, SMOKE_MODEL_BATCH, repoRoot), inProcessCaseRunner(), () => {});
 * ```
 */
export function inProcessCaseRunner(): CaseRunner {
  return (benchCase) => runTask(benchCase.task);
}
