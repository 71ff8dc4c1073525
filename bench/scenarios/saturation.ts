import { createClient, type BatchRules, type ImplName } from '../impls';
import { SerialTimerModel } from '../harness/models';
import { openLoop, poissonArrivals, uniformArrivals } from '../harness/openLoop';
import { now, sleep } from '../harness/process';
import { mean, percentile } from '../harness/statistics';
import type { Metrics } from '../harness/tasks';

/**
 * Options of {@link measureSaturation}.
 *
 * @example
 * ```ts
 * const options: SaturationOptions = { impl: 'rx-batcher', ratePerSec: 600, durationMs: 2000, rules: { maxBatchSize: 64, maxDelayMs: 2 }, overheadMs: 5, perItemMs: 0.05 };
 * ```
 */
export interface SaturationOptions {
  readonly impl: ImplName | 'model-direct';
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly rules: BatchRules;
  readonly overheadMs: number;
  readonly perItemMs: number;
}

/**
 * Scenario 3: open-loop arrivals at a constant rate for `durationMs` against the serial timer
 * model. Counts only what happens inside the arrival window: throughput (answers in the window
 * per second), mean batch size (of model calls received), latency of answered requests, and
 * the backlog (issued − answered) at half time and at the end, whose growth per second shows a
 * queue growing without bound. `model-direct` feeds the model full batches back to back: the
 * model's own ceiling, measured in the same run.
 *
 * @example
 * ```ts
 * const m = await measureSaturation({ impl: 'rx-batcher', ratePerSec: 600, durationMs: 3000, rules: { maxBatchSize: 64, maxDelayMs: 2 }, overheadMs: 5, perItemMs: 0.05 });
 * ```
 */
export async function measureSaturation(options: SaturationOptions): Promise<Metrics> {
  const { impl, ratePerSec, durationMs, rules } = options;
  const model = new SerialTimerModel(options.overheadMs, options.perItemMs);
  const ideal = model.idealThroughput(rules.maxBatchSize);
  if (impl === 'model-direct') return measureModelDirect(model, rules.maxBatchSize, durationMs, ideal);

  let received = 0;
  let receivedCalls = 0;
  model.onReceive = (inputs) => {
    received += inputs.length;
    receivedCalls++;
  };
  const client = createClient(impl, model, rules);
  const arrivals = uniformArrivals(ratePerSec, Math.round((ratePerSec * durationMs) / 1000));
  const issuedAt = new Float64Array(arrivals.length);
  const latencies = new Float64Array(arrivals.length);
  let answered = 0;
  let failed = 0;
  let end = Infinity;
  let issued = 0;
  let backlogAtHalf = Number.NaN;
  const half = setTimeout(() => (backlogAtHalf = issued - answered - failed), durationMs / 2);
  const start = await openLoop(arrivals, (i, t0) => {
    if (end === Infinity) end = t0 + durationMs;
    issued++;
    issuedAt[i] = now();
    client.call(i).then(
      () => {
        const t = now();
        if (t <= end) latencies[answered++] = t - issuedAt[i];
      },
      () => failed++,
    );
  });
  const remaining = start + durationMs - now();
  if (remaining > 0) await sleep(remaining);
  clearTimeout(half);
  const backlogAtEnd = issued - answered - failed;
  const answeredLatencies = latencies.subarray(0, answered);
  const throughput = (answered * 1000) / durationMs;
  const metrics: Metrics = {
    arrivalPerSec: ratePerSec,
    throughputPerSec: throughput,
    idealPerSec: ideal,
    throughputOfIdeal: throughput / ideal,
    throughputOfArrivals: throughput / ratePerSec,
    meanBatchSize: receivedCalls === 0 ? 0 : received / receivedCalls,
    latencyP50Ms: percentile(answeredLatencies, 50),
    latencyP99Ms: percentile(answeredLatencies, 99),
    backlogAtHalf,
    backlogAtEnd,
    backlogGrowthPerSec: ((backlogAtEnd - backlogAtHalf) * 1000) / (durationMs / 2),
    failed,
  };
  // Measured. Drop the backlog (an overloaded implementation can hold seconds of model calls)
  // and release the client's timers, so nothing runs on after this measurement.
  model.stop();
  await client.close();
  return metrics;
}

async function measureModelDirect(model: SerialTimerModel, size: number, durationMs: number, ideal: number): Promise<Metrics> {
  const batch = Array.from({ length: size }, (_, i) => i);
  const start = now();
  let items = 0;
  while (now() - start < durationMs) {
    await model.runBatch(batch);
    items += size;
  }
  const throughput = (items * 1000) / (now() - start);
  return { throughputPerSec: throughput, idealPerSec: ideal, throughputOfIdeal: throughput / ideal, meanBatchSize: size };
}

/**
 * Options of {@link measureLatency}.
 *
 * @example
 * ```ts
 * const options: LatencyOptions = { impl: 'dataloader', ratePerSec: 3900, durationMs: 2000, rules: { maxBatchSize: 64, maxDelayMs: 5 }, overheadMs: 5, perItemMs: 0.05, seed: 4 };
 * ```
 */
export interface LatencyOptions extends SaturationOptions {
  readonly impl: ImplName;
  readonly seed: number;
}

/**
 * Scenario 4: Poisson arrivals for `durationMs`; reports the wait in the batcher (from the call
 * to the moment the request's batch reaches `runBatch`) and the end-to-end latency, after every
 * request has been answered.
 *
 * @example
 * ```ts
 * const m = await measureLatency({ impl: 'rx-batcher', ratePerSec: 3900, durationMs: 3000, rules: { maxBatchSize: 64, maxDelayMs: 5 }, overheadMs: 5, perItemMs: 0.05, seed: 1 });
 * ```
 */
export async function measureLatency(options: LatencyOptions): Promise<Metrics> {
  const { impl, rules } = options;
  const model = new SerialTimerModel(options.overheadMs, options.perItemMs);
  const arrivals = poissonArrivals(options.ratePerSec, options.durationMs, options.seed);
  const issuedAt = new Float64Array(arrivals.length);
  const waits = new Float64Array(arrivals.length).fill(Number.NaN);
  const latencies = new Float64Array(arrivals.length).fill(Number.NaN);
  const batchSizes: number[] = [];
  model.onReceive = (inputs) => {
    const t = now();
    batchSizes.push(inputs.length);
    for (const i of inputs) waits[i] = t - issuedAt[i];
  };
  const client = createClient(impl, model, rules);
  let settled = 0;
  let failed = 0;
  const start = await openLoop(arrivals, (i) => {
    issuedAt[i] = now();
    client.call(i).then(
      () => {
        latencies[i] = now() - issuedAt[i];
        settled++;
      },
      () => {
        failed++;
        settled++;
      },
    );
  });
  const deadline = now() + 5000;
  while (settled < arrivals.length && now() < deadline) await sleep(5);
  const elapsed = now() - start;
  await client.close();
  const answered = latencies.filter((x) => !Number.isNaN(x));
  const waited = waits.filter((x) => !Number.isNaN(x));
  return {
    arrivalPerSec: options.ratePerSec,
    requests: arrivals.length,
    answered: answered.length,
    failed,
    waitP50Ms: percentile(waited, 50),
    waitP99Ms: percentile(waited, 99),
    waitMaxMs: percentile(waited, 100),
    latencyP50Ms: percentile(answered, 50),
    latencyP99Ms: percentile(answered, 99),
    meanBatchSize: mean(batchSizes),
    elapsedMs: elapsed,
  };
}
