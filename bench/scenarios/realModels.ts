import { createClient, type BatchRules, type ImplName } from '../impls';
import { loadRealModel, type RealModel } from '../harness/realModels';
import { now, peakRssMb } from '../harness/process';
import { median, percentile } from '../harness/statistics';
import type { Metrics, RealModelName } from '../harness/tasks';
import type { BenchModel } from '../impls/types';

const DISTINCT_INPUTS = 256;

/**
 * The model's own throughput: direct `runBatch` (one `session.run`) on ready-made batches of
 * each size, back to back, the sizes taking turns in 25 ms slices for `durationMs` in all.
 * The best size is what the batchers are compared with.
 *
 * @example
 * ```ts
 * const m = await measureModelBest('mlp', [16, 32, 64, 128], 2000, repoRoot);
 * console.log(m.bestPerSec, m.bestSize);
 * ```
 */
export async function measureModelBest(name: RealModelName, sizes: readonly number[], durationMs: number, repoRoot: string): Promise<Metrics> {
  const real = await loadRealModel(name, repoRoot, DISTINCT_INPUTS);
  const batches = sizes.map((size) => Array.from({ length: size }, (_, i) => real.inputs[i % real.inputs.length]));
  for (const batch of batches) for (let i = 0; i < 3; i++) await real.model.runBatch(batch);
  // Round-robin in short slices, so a burst of load from elsewhere on the machine hits every size alike.
  const items = sizes.map(() => 0);
  const spent = sizes.map(() => 0);
  const sliceMs = 25;
  const start = now();
  while (now() - start < durationMs) {
    for (let k = 0; k < sizes.length; k++) {
      const sliceStart = now();
      do {
        await real.model.runBatch(batches[k]);
        items[k] += sizes[k];
      } while (now() - sliceStart < sliceMs);
      spent[k] += now() - sliceStart;
    }
  }
  const perSize: Record<string, number> = {};
  let bestPerSec = 0;
  let bestSize = 0;
  sizes.forEach((size, k) => {
    const perSec = (items[k] * 1000) / spent[k];
    perSize[String(size)] = perSec;
    if (perSec > bestPerSec) [bestPerSec, bestSize] = [perSec, size];
  });
  await real.close();
  return { bestPerSec, bestSize, perSize, peakRssMb: peakRssMb() };
}

/**
 * Scenario 5a: `n` concurrent single-input requests through an implementation, `rounds` times,
 * each round between two measurements of the model alone at `rules.maxBatchSize`
 * (`pairedDirectMs` each): throughput and efficiency (throughput ÷ the model alone around it)
 * as medians over the rounds, the mean batch formed, and the largest difference between an
 * answer and the unbatched answer for the same input.
 *
 * @example
 * ```ts
 * const m = await measureModelBurst('silero', 'rx-batcher', 10_000, { maxBatchSize: 128, maxDelayMs: 0 }, repoRoot, 200, 3);
 * ```
 */
export async function measureModelBurst(name: RealModelName, impl: ImplName, n: number, rules: BatchRules, repoRoot: string, pairedDirectMs = 0, rounds = 1): Promise<Metrics> {
  const setup = await prepare(name, impl, rules, repoRoot);
  const { real, client } = setup;
  const result = await pairedRounds(setup, rules.maxBatchSize, pairedDirectMs, rounds, async () => {
    const start = now();
    const promises = new Array<Promise<unknown>>(n);
    for (let i = 0; i < n; i++) promises[i] = client.call(real.inputs[i % real.inputs.length]);
    const outputs = await Promise.all(promises);
    const elapsed = now() - start;
    for (let i = 0; i < n; i++) setup.check(outputs[i], i % real.inputs.length);
    return (n * 1000) / elapsed;
  });
  await setup.close();
  return { ...result, maxAbsDiff: setup.maxAbsDiff(), peakRssMb: peakRssMb() };
}

/**
 * Scenario 5b: a closed loop of `clients` concurrent clients, each sending its next request
 * when the previous one is answered, in `rounds` rounds of `durationMs / rounds`, each between
 * two measurements of the model alone (as in {@link measureModelBurst}); throughput, efficiency,
 * latency and the same equality check against unbatched answers. When `clients` is below
 * `rules.maxBatchSize` the model alone is also measured at `clients` (the largest batch this
 * load can form) around each round: `pairedFormedEfficiency`.
 *
 * @example
 * ```ts
 * const m = await measureModelClosedLoop('mlp', 'dataloader', 64, 3000, { maxBatchSize: 64, maxDelayMs: 0 }, repoRoot, 200, 3);
 * ```
 */
export async function measureModelClosedLoop(
  name: RealModelName,
  impl: ImplName,
  clients: number,
  durationMs: number,
  rules: BatchRules,
  repoRoot: string,
  pairedDirectMs = 0,
  rounds = 1,
): Promise<Metrics> {
  const setup = await prepare(name, impl, rules, repoRoot);
  const { real, client } = setup;
  const latencies: number[] = [];
  // `clients` callers never form a batch larger than `clients`: the model alone at that size is
  // this load's own ceiling, measured beside the best size so the report can tell them apart.
  const formed = Math.min(clients, rules.maxBatchSize);
  const result = await pairedRounds(setup, rules.maxBatchSize, pairedDirectMs, rounds, async () => {
    let answered = 0;
    const start = now();
    const end = start + durationMs / rounds;
    const loop = async (offset: number): Promise<void> => {
      for (let k = offset; now() < end; k += clients) {
        const index = k % real.inputs.length;
        const t = now();
        const output = await client.call(real.inputs[index]);
        latencies.push(now() - t);
        answered++;
        setup.check(output, index);
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
    return (answered * 1000) / (now() - start);
  }, formed);
  await setup.close();
  return {
    ...result,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    maxAbsDiff: setup.maxAbsDiff(),
    peakRssMb: peakRssMb(),
  };
}

interface Setup {
  readonly real: RealModel;
  readonly client: ReturnType<typeof createClient<unknown, unknown>>;
  readonly counted: ReturnType<typeof countingModel>;
  /** Compares an answer with the unbatched answer for input `index`. */
  check(output: unknown, index: number): void;
  maxAbsDiff(): number;
  close(): Promise<void>;
}

/** Loads the model, computes the unbatched reference answers, makes the client and warms it up. */
async function prepare(name: RealModelName, impl: ImplName, rules: BatchRules, repoRoot: string): Promise<Setup> {
  const real = await loadRealModel(name, repoRoot, DISTINCT_INPUTS);
  const references = await unbatchedReferences(real);
  const counted = countingModel(real.model);
  const client = createClient(impl, counted.model, rules);
  await Promise.all(Array.from({ length: 2 * rules.maxBatchSize }, (_, i) => client.call(real.inputs[i % real.inputs.length])));
  let maxAbsDiff = 0;
  return {
    real,
    client,
    counted,
    check: (output, index) => {
      maxAbsDiff = Math.max(maxAbsDiff, real.maxAbsDiff(output, references[index]));
    },
    maxAbsDiff: () => maxAbsDiff,
    close: async () => {
      await client.close();
      await real.close();
    },
  };
}

/**
 * Runs `measure` `rounds` times, each between two measurements of the model alone at `size`,
 * and reports medians of the throughput and of the efficiency (throughput ÷ the mean of the
 * two model-alone measurements around it), plus the mean batch size over all rounds. With
 * `formedSize` (the largest batch the load can form, when below `size`) the model alone is
 * also measured at that size around each round: `pairedFormedEfficiency` is the throughput ÷
 * that, the share of what the model can do at the batches this load allows.
 */
async function pairedRounds(setup: Setup, size: number, directMs: number, rounds: number, measure: () => Promise<number>, formedSize = size): Promise<Metrics> {
  const throughputs: number[] = [];
  const efficiencies: number[] = [];
  const directs: number[] = [];
  const formedDirects: number[] = [];
  const formedEfficiencies: number[] = [];
  const formed = formedSize < size;
  let before = await directThroughput(setup.real, size, directMs);
  let formedBefore = formed ? await directThroughput(setup.real, formedSize, directMs) : Number.NaN;
  let calls = 0;
  let items = 0;
  for (let round = 0; round < rounds; round++) {
    setup.counted.reset();
    const throughput = await measure();
    calls += setup.counted.calls();
    items += setup.counted.items();
    const after = await directThroughput(setup.real, size, directMs);
    throughputs.push(throughput);
    directs.push((before + after) / 2);
    efficiencies.push(throughput / ((before + after) / 2));
    before = after;
    if (formed) {
      const formedAfter = await directThroughput(setup.real, formedSize, directMs);
      formedDirects.push((formedBefore + formedAfter) / 2);
      formedEfficiencies.push(throughput / ((formedBefore + formedAfter) / 2));
      formedBefore = formedAfter;
    }
  }
  const metrics: Metrics = { throughputPerSec: median(throughputs), meanBatchSize: calls === 0 ? 0 : items / calls, rounds };
  if (directMs > 0) Object.assign(metrics, { pairedDirectPerSec: median(directs), pairedEfficiency: median(efficiencies) });
  if (directMs > 0 && formed) {
    Object.assign(metrics, { formedBatchSize: formedSize, pairedFormedDirectPerSec: median(formedDirects), pairedFormedEfficiency: median(formedEfficiencies) });
  }
  return metrics;
}

/**
 * The model's own throughput on ready-made batches of `size`, back to back for `ms`
 * (NaN when `ms` is 0). Measured in the same process right before and after a run, it pairs
 * each run with the model's speed at that moment, which cancels load from elsewhere on the machine.
 */
async function directThroughput(real: RealModel, size: number, ms: number): Promise<number> {
  if (ms <= 0) return Number.NaN;
  const batch = Array.from({ length: size }, (_, i) => real.inputs[i % real.inputs.length]);
  await real.model.runBatch(batch);
  const start = now();
  let items = 0;
  do {
    await real.model.runBatch(batch);
    items += size;
  } while (now() - start < ms);
  return (items * 1000) / (now() - start);
}

/** Wraps a model to count calls and items, for the mean batch size the implementation formed. */
function countingModel(model: BenchModel<unknown, unknown>): { model: BenchModel<unknown, unknown>; reset(): void; calls(): number; items(): number } {
  let calls = 0;
  let items = 0;
  return {
    model: {
      runBatch: (inputs) => {
        calls++;
        items += inputs.length;
        return model.runBatch(inputs);
      },
      runOne: (input) => {
        calls++;
        items++;
        return model.runOne(input);
      },
    },
    reset: () => {
      calls = 0;
      items = 0;
    },
    calls: () => calls,
    items: () => items,
  };
}

async function unbatchedReferences(real: RealModel): Promise<unknown[]> {
  const references: unknown[] = [];
  for (const input of real.inputs) references.push(await real.model.runOne(input));
  return references;
}
