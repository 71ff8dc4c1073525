/**
 * Recipe: export a batcher's `stats$` to Prometheus with `prom-client`, under the names and
 * units model servers use (seconds, `_total` counters, one label per batcher).
 *
 * | metric | type | from | like |
 * |---|---|---|---|
 * | `rx_batcher_queue_wait_seconds` | histogram | `lastBatch.queueWaitMs` (one sample per request) | Triton `nv_inference_queue_duration_us`, Ray `serve_batch_wait_time_ms` |
 * | `rx_batcher_batch_size` | histogram | `lastBatch.size` | Ray `serve_actual_batch_size`, BentoML `adaptive_batch_size` |
 * | `rx_batcher_batch_duration_seconds` | histogram | `lastBatch.durationMs` | Ray `serve_batch_execution_time_ms`, Triton `compute_infer_duration` |
 * | `rx_batcher_queue_depth` | gauge | `queued` (read at scrape time) | Ray `serve_batch_queue_length`, Triton `pending_request_count` |
 * | `rx_batcher_in_flight_requests` | gauge | `inFlight` (read at scrape time) | BentoML `request_in_progress` |
 * | `rx_batcher_requests_total{outcome}` | counter | `succeeded`, `failed`, `cancelled`, `timedOut`, `rejected` | Triton `request_success` / `request_failure` |
 * | `rx_batcher_batches_total{reason}` | counter | `dispatchReasons` | why batches were sealed |
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import type { Batcher, BatcherStats } from 'rx-batcher';

/** The request outcomes counted by `rx_batcher_requests_total`, as its `outcome` label spells them. */
const OUTCOMES = {
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  timedOut: 'timed_out',
  rejected: 'rejected',
} as const satisfies Partial<Record<keyof BatcherStats, string>>;

const REASONS = ['full', 'delay', 'flush', 'drain', 'target'] as const;

/** Options of {@link exportBatcherMetrics}. */
export interface ExportOptions {
  /** The batcher's `maxBatchSize`: the batch size buckets go up to it. Default 64. */
  readonly maxBatchSize?: number;
}

/**
 * Registers rx-batcher metrics for `batcher` on `registry` and keeps them up to date from
 * `batcher.stats$`. Several batchers can share one registry: each is a `batcher` label.
 * Returns the subscription; it ends by itself when the batcher has stopped.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * exportBatcherMetrics(batcher, registry, { maxBatchSize: 32 });
 * // later: await registry.metrics() → text for GET /metrics
 * ```
 */
export function exportBatcherMetrics<I, O>(batcher: Batcher<I, O>, registry: Registry, options: ExportOptions = {}): Subscription {
  const labels = { batcher: batcher.name };
  const metric = <T>(name: string, create: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? create();
  const registers = [registry];

  // The three histograms differ only in name, help and buckets.
  const histogram = (name: string, help: string, buckets: number[]) =>
    metric(name, () => new Histogram({ name, help, labelNames: ['batcher'], buckets, registers }));
  const queueWait = histogram(
    'rx_batcher_queue_wait_seconds',
    'Time each request waited in the queue before its batch was sent to runBatch.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  const batchSize = histogram('rx_batcher_batch_size', 'Inputs per runBatch call.', powersOfTwoUpTo(options.maxBatchSize ?? 64));
  const batchDuration = histogram(
    'rx_batcher_batch_duration_seconds',
    'Time from the runBatch call to its result.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  const requests = metric('rx_batcher_requests_total', () => new Counter({
    name: 'rx_batcher_requests_total',
    help: 'Requests settled, by outcome.',
    labelNames: ['batcher', 'outcome'],
    registers,
  }));
  const batches = metric('rx_batcher_batches_total', () => new Counter({
    name: 'rx_batcher_batches_total',
    help: 'Batches dispatched, by why they were sealed.',
    labelNames: ['batcher', 'reason'],
    registers,
  }));
  // Gauges read the live value when Prometheus scrapes, so they are never stale between batches.
  gaugeAtScrape(registry, 'rx_batcher_queue_depth', 'Requests waiting in the queue.', batcher, (s) => s.queued);
  gaugeAtScrape(registry, 'rx_batcher_in_flight_requests', 'Requests in running batches.', batcher, (s) => s.inFlight);

  // Start every labelled series at 0, so dashboards see them before the first event.
  for (const outcome of Object.values(OUTCOMES)) requests.inc({ ...labels, outcome }, 0);
  for (const reason of REASONS) batches.inc({ ...labels, reason }, 0);

  let previous: BatcherStats | undefined;
  return batcher.stats$.subscribe((stats) => {
    for (const [field, outcome] of Object.entries(OUTCOMES) as [keyof typeof OUTCOMES, string][]) {
      const delta = stats[field] - (previous?.[field] ?? 0);
      if (delta > 0) requests.inc({ ...labels, outcome }, delta);
    }
    for (const reason of REASONS) {
      const delta = stats.dispatchReasons[reason] - (previous?.dispatchReasons[reason] ?? 0);
      if (delta > 0) batches.inc({ ...labels, reason }, delta);
    }
    // stats$ emits after every finished batch, so each batch report is seen once.
    const report = stats.lastBatch;
    if (report !== undefined && report !== previous?.lastBatch) {
      batchSize.observe(labels, report.size);
      batchDuration.observe(labels, report.durationMs / 1000);
      for (const waitMs of report.queueWaitMs) queueWait.observe(labels, waitMs / 1000);
    }
    previous = stats;
  });
}

/** Per registry: how to read the current stats of each batcher registered on it, by name. */
const liveStats = new WeakMap<Registry, Map<string, () => BatcherStats>>();

/** A gauge set from `batcher.stats()` at each scrape, one series per batcher on the registry. */
function gaugeAtScrape<I, O>(registry: Registry, name: string, help: string, batcher: Batcher<I, O>, read: (s: BatcherStats) => number): void {
  let sources = liveStats.get(registry);
  if (sources === undefined) liveStats.set(registry, (sources = new Map()));
  sources.set(batcher.name, () => batcher.stats());
  if (registry.getSingleMetric(name) !== undefined) return;
  const batchers = sources;
  new Gauge({
    name,
    help,
    labelNames: ['batcher'],
    registers: [registry],
    collect() {
      for (const [label, stats] of batchers) this.set({ batcher: label }, read(stats()));
    },
  });
}

function powersOfTwoUpTo(max: number): number[] {
  const buckets: number[] = [];
  for (let b = 1; b < max; b *= 2) buckets.push(b);
  buckets.push(max);
  return buckets;
}
