/**
 * The recipe's app: a batched model, its metrics exported, and `/metrics` served over HTTP.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { map, timer, type SchedulerLike } from 'rxjs';
import { Batcher } from 'rx-batcher';
import { exportBatcherMetrics } from './prometheus';
import { serveMetrics, type MetricsServer } from './server';

/** A running app: send it work with `batcher.run()`, scrape `metrics.url`, then `close()`. */
export interface MonitoredApp {
  readonly batcher: Batcher<number, number>;
  readonly registry: Registry;
  readonly metrics: MetricsServer;
  /** Drains the batcher and closes the metrics server. */
  close(): Promise<void>;
}

/** Options of {@link startMonitoredApp}. */
export interface MonitoredAppOptions {
  /** Where `/metrics` is served (0: any free port). Default 0. */
  readonly port?: number;
  /** Also export the process metrics of prom-client (CPU, memory, event loop lag). */
  readonly processMetrics?: boolean;
  /** The clock of the batcher and the stand-in model: tests pass a virtual-time scheduler; the app leaves it out. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Starts a batcher around a stand-in model (2 ms + 0.05 ms per input; a negative input fails
 * on its own) with its metrics on `http://127.0.0.1:<port>/metrics`.
 *
 * @example
 * ```ts
 * const app = await startMonitoredApp({ port: 9464 });
 * await Promise.all([1, 2, 3].map((x) => app.batcher.run(x)));
 * console.log(await (await fetch(app.metrics.url)).text());
 * await app.close();
 * ```
 */
export async function startMonitoredApp(options: MonitoredAppOptions = {}): Promise<MonitoredApp> {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const maxBatchSize = 32;
  const batcher = new Batcher<number, number>({
    name: 'scorer',
    maxBatchSize,
    maxDelayMs: 2,
    maxQueueSize: 1000,
    scheduler: options.scheduler,
    runBatch: (xs) =>
      timer(2 + 0.05 * xs.length, options.scheduler).pipe(map(() => xs.map((x) => (x < 0 ? new Error(`negative input ${x}`) : Math.sqrt(x))))),
  });
  exportBatcherMetrics(batcher, registry, { maxBatchSize });
  const metrics = await serveMetrics(registry, { port: options.port ?? 0 });
  return {
    batcher,
    registry,
    metrics,
    close: async () => {
      await batcher.stop({ drain: true });
      await metrics.close();
    },
  };
}
