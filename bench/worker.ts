/**
 * One measurement in a fresh Node process: `node --expose-gc worker.js '<task JSON>'`.
 * Prints the metrics as one line `RESULT {json}` and exits; errors go to stderr with exit code 1.
 * Started by the runner (`bench/runner.ts`); not meant to be run by hand, though it can be.
 */
import { measureHttpOverload } from './http/overload';
import { measurePendingHeap, measureThroughput } from './scenarios/overhead';
import { measureModelBest, measureModelBurst, measureModelClosedLoop } from './scenarios/realModels';
import { measureLatencyTarget } from './scenarios/latencyTarget';
import { measureLatency, measureSaturation } from './scenarios/saturation';
import { measureSoak } from './scenarios/soak';
import { measureStreaming } from './scenarios/streaming';
import { RESULT_PREFIX, type Metrics, type Task } from './harness/tasks';


/**
 * Runs one task in this process.
 *
 * @example
 * ```ts
 * const metrics = await runTask({ kind: 'throughput', impl: 'unbatched', n: 1000, rules: { maxBatchSize: 64, maxDelayMs: 0 }, warmup: 0, rounds: 1 });
 * ```
 */
export function runTask(task: Task): Promise<Metrics> {
  switch (task.kind) {
    case 'throughput':
      return measureThroughput(task.impl, task.n, task.rules, task.warmup, task.rounds);
    case 'heap':
      return measurePendingHeap(task.impl, task.n, task.rules);
    case 'saturation':
      return measureSaturation(task);
    case 'latency':
      return measureLatency(task);
    case 'model-best':
      return measureModelBest(task.model, task.sizes, task.durationMs, task.repoRoot);
    case 'model-burst':
      return measureModelBurst(task.model, task.impl, task.n, task.rules, task.repoRoot, task.pairedDirectMs, task.rounds);
    case 'model-closed':
      return measureModelClosedLoop(task.model, task.impl, task.clients, task.durationMs, task.rules, task.repoRoot, task.pairedDirectMs, task.rounds);
    case 'soak':
      return measureSoak(task.n, task.ratePerSec, task.rules);
    case 'latency-target':
      return measureLatencyTarget(task);
    case 'http-overload':
      return measureHttpOverload(task);
    case 'streaming':
      return measureStreaming(task);
    default:
      return Promise.reject(new TypeError(`unknown task kind in ${JSON.stringify(task)}`));
  }
}

if (require.main === module) {
  const argument = process.argv[2];
  if (argument === undefined) {
    console.error('usage: node --expose-gc worker.js \'<task JSON>\'');
    process.exit(2);
  }
  runTask(JSON.parse(argument) as Task).then(
    (metrics) => {
      process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(metrics)}\n`, () => process.exit(0));
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.stack : error);
      process.exit(1);
    },
  );
}
