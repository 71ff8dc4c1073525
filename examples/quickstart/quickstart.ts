import { Batcher } from 'rx-batcher';
import { SimulatedModel } from './simulatedModel';

/** The outcome of one run of the quickstart load. */
export interface LoadResult {
  readonly label: string;
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanBatchSize: number;
}

/** Options of {@link runQuickstart}. */
export interface QuickstartOptions {
  /** Concurrent clients, each sending its next request as soon as the last one is answered. */
  readonly clients?: number;
  /** How long each mode runs. */
  readonly durationMs?: number;
  /** Called about every 250 ms with the requests answered so far. */
  readonly onProgress?: (label: string, done: number, elapsedMs: number) => void;
}

/**
 * Runs the same closed-loop load against a simulated model twice: one model call per request,
 * then through a `Batcher`. Returns throughput and latency for both.
 */
export async function runQuickstart(options: QuickstartOptions = {}): Promise<LoadResult[]> {
  const clients = options.clients ?? 64;
  const durationMs = options.durationMs ?? 2000;

  const unbatchedModel = new SimulatedModel();
  const unbatched = await closedLoop('without batching', clients, durationMs, (x) => unbatchedModel.predict(x), options.onProgress);

  const model = new SimulatedModel();
  const batcher = new Batcher<number, number>({
    name: 'quickstart',
    runBatch: (inputs) => model.predictBatch(inputs),
    maxBatchSize: 64,
    maxDelayMs: 2,
  });
  const batched = await closedLoop('with rx-batcher', clients, durationMs, (x) => batcher.run(x), options.onProgress);
  await batcher.stop({ drain: true });

  return [
    { ...unbatched, meanBatchSize: unbatchedModel.items / Math.max(1, unbatchedModel.calls) },
    { ...batched, meanBatchSize: batcher.stats().meanBatchSize },
  ];
}

async function closedLoop(
  label: string,
  clients: number,
  durationMs: number,
  call: (x: number) => Promise<number>,
  onProgress: QuickstartOptions['onProgress'],
): Promise<Omit<LoadResult, 'meanBatchSize'>> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + durationMs;
  const progress = setInterval(() => onProgress?.(label, latencies.length, performance.now() - start), 250);
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let i = 0; performance.now() < end; i++) {
          const x = client * 1_000_000 + i;
          const t0 = performance.now();
          const y = await call(x);
          if (y !== x * 2) throw new Error(`wrong answer for ${x}: ${y}`);
          latencies.push(performance.now() - t0);
        }
      }),
    );
  } finally {
    clearInterval(progress);
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    label,
    requests: latencies.length,
    seconds,
    requestsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Formats results as an aligned text table. */
export function formatTable(results: readonly LoadResult[]): string {
  const rows = [
    ['mode', 'requests/s', 'p50 ms', 'p99 ms', 'mean batch'],
    ...results.map((r) => [r.label, r.requestsPerSecond.toFixed(0), r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), r.meanBatchSize.toFixed(1)]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}
