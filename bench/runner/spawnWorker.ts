import { spawn } from 'node:child_process';
import { RESULT_PREFIX, type Metrics, type Task } from '../harness/tasks';
import type { BenchCase } from './plan';
import type { CaseRunner } from './runScenarios';

/**
 * Measures each case in a fresh `node --expose-gc` process on the compiled worker, with the
 * case's own node flags plus `extraNodeFlags` (e.g. `--cpu-prof`): how full and quick runs measure.
 * `nodeBinary` picks the Node (`--node 24`); this process's by default.
 *
 * @example
 * ```ts
 * const raw = await runScenarios(scenarios, workerCaseRunner(workerPath, repoRoot), console.log);
 * ```
 */
export function workerCaseRunner(
  workerPath: string,
  repoRoot: string,
  extraNodeFlags: (benchCase: BenchCase, repetition: number) => readonly string[] = () => [],
  nodeBinary: string = process.execPath,
): CaseRunner {
  return (benchCase, repetition) =>
    runWorker(workerPath, benchCase.task, { cwd: repoRoot, nodeBinary, nodeFlags: [...(benchCase.nodeFlags ?? []), ...extraNodeFlags(benchCase, repetition)] });
}

/**
 * Runs one task in a fresh `node --expose-gc` process (`nodeBinary`, this process's Node by
 * default) on the compiled worker and returns its metrics. Rejects with the worker's stderr
 * when it fails or prints no result, and kills it (by its PID) when it exceeds `timeoutMs`.
 *
 * @example
 * ```ts
 * const metrics = await runWorker(workerPath, task, { cwd: repoRoot });
 * ```
 */
export function runWorker(
  workerPath: string,
  task: Task,
  options: { readonly cwd: string; readonly nodeFlags?: readonly string[]; readonly timeoutMs?: number; readonly nodeBinary?: string },
): Promise<Metrics> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.nodeBinary ?? process.execPath, ['--expose-gc', ...(options.nodeFlags ?? []), workerPath, JSON.stringify(task)], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n[bench] worker killed after ${options.timeoutMs} ms`;
    }, options.timeoutMs ?? 300_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line !== undefined) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as Metrics);
      } else {
        reject(new Error(`worker for ${JSON.stringify(task)} failed (exit ${code ?? signal}):\n${stderr.trim() || stdout.trim()}`));
      }
    });
  });
}
