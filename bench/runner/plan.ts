import { describeConfig, DROP_INS, FLOORS, IMPLEMENTATIONS, type BatchRules, type ImplName } from '../impls';
import type { Metrics, RealModelName, Task } from '../harness/tasks';
import { outputLengths, wholeBatchCapacity, type LengthShape } from '../scenarios/streaming';

/**
 * The simulated model of scenarios 3 and 4: 5 ms + 0.05 ms per item.
 *
 * @example
 * ```ts
 * const model = new SerialTimerModel(SIMULATED_MODEL.overheadMs, SIMULATED_MODEL.perItemMs);
 * ```
 */
export const SIMULATED_MODEL = { overheadMs: 5, perItemMs: 0.05 } as const;

/**
 * One measurement of a scenario: an implementation (label) under one condition (group).
 *
 * @example
 * ```ts
 * const first: BenchCase = buildPlan(QUICK, { silero: 64, mlp: 64 }, repoRoot)[0].cases[0];
 * ```
 */
export interface BenchCase {
  readonly scenario: ScenarioId;
  /** The condition, e.g. `n=100000` or `load=3x`; cases of one group are compared with each other. */
  readonly group: string;
  /** Who is measured: an implementation, a variant of one, or the model itself. */
  readonly label: string;
  /** How it is configured, in words, for the report. */
  readonly config: string;
  readonly task: Task;
  /** Extra `node` flags for the worker (memory limits). */
  readonly nodeFlags?: readonly string[];
  /** Run this case in at most this many of the scenario's repetitions (slow, deterministic measurements). */
  readonly maxRepetitions?: number;
}

/**
 * A scenario: its cases, run `repetitions` times interleaved (A B C A B C …).
 *
 * @example
 * ```ts
 * for (const s of buildPlan(FULL, sizes, repoRoot)) console.log(s.id, s.cases.length);
 * ```
 */
export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  readonly repetitions: number;
  readonly cases: readonly BenchCase[];
}

/**
 * The scenarios of issue 3 (1 and 2 share their runs).
 *
 * @example
 * ```ts
 * const id: ScenarioId = 's3';
 * ```
 */
export type ScenarioId = 's1-s2' | 's3' | 's4' | 's5' | 's6' | 's7' | 's8' | 's9';

/**
 * Sizes and durations of one mode.
 *
 * @example
 * ```ts
 * const sizes: PlanSizes = { ...FULL, repetitions: 5 };
 * ```
 */
export interface PlanSizes {
  readonly repetitions: number;
  readonly concurrentCalls: readonly number[];
  readonly headlineCalls: number;
  readonly heapCalls: readonly number[];
  readonly warmup: number;
  /** Timed calls per throughput measurement, split into rounds of n (1–20 rounds). */
  readonly roundCalls: number;
  readonly saturationMs: number;
  readonly latencyMs: number;
  readonly modelBurst: number;
  readonly modelClosedMs: number;
  readonly modelBestMs: number;
  /** The model alone at the batchers' batch size, right before and after each scenario-5 run, for this long each. */
  readonly pairedDirectMs: number;
  /** Scenario-5 runs per process, each between two model-alone measurements (median reported). */
  readonly modelRounds: number;
  readonly modelBatchSizes: readonly number[];
  /** The real-model batchers' batch size when it is not calibrated (quick and smoke mode). */
  readonly defaultModelBatch: number;
  readonly soakRequests: number;
  readonly soakRate: number;
  /** Scenario 7: the measured window of each run (the slowdown run gets twice this), after a warm-up of a sixth of it. */
  readonly targetMs: number;
  /** Scenario 8: the HTTP load the server cannot serve in full (the issue's 6,000/s over 1,500 connections)… */
  readonly httpOverload: HttpLoad;
  /** …and one it should keep up with (2,500/s over 256 connections). */
  readonly httpSteady: HttpLoad;
  /** How long each HTTP load is offered. */
  readonly httpDurationMs: number;
  /** Scenario 9: streaming outputs, continuous against whole-batch. */
  readonly streaming: StreamingSizes;
}

/**
 * Scenario 9's sizes: requests issued at once for throughput, how long Poisson arrivals last
 * for time to first chunk, and the shape of the outputs (the issue's in full and quick runs).
 *
 * @example
 * ```ts
 * const s: StreamingSizes = { backlog: 256, loadMs: 6000, maxBatchSize: 64, lognormalCap: 1000, uniformMax: 200 };
 * ```
 */
export interface StreamingSizes {
  readonly backlog: number;
  readonly loadMs: number;
  readonly maxBatchSize: number;
  readonly lognormalCap: number;
  readonly uniformMax: number;
}

/**
 * An HTTP load of scenario 8: requests per second, issued open-loop over one undici `Pool`.
 *
 * @example
 * ```ts
 * const load: HttpLoad = { ratePerSec: 6000, connections: 1500 };
 * ```
 */
export interface HttpLoad {
  readonly ratePerSec: number;
  readonly connections: number;
}

/**
 * `npm run bench`: the issue's sizes, durations chosen to keep the whole run near 10 minutes.
 *
 * @example
 * ```ts
 * const scenarios = buildPlan(FULL, { silero: 256, mlp: 128 }, repoRoot);
 * ```
 */
export const FULL: PlanSizes = {
  repetitions: 3,
  concurrentCalls: [1_000, 10_000, 100_000, 1_000_000],
  headlineCalls: 100_000,
  heapCalls: [10_000, 100_000, 1_000_000],
  warmup: 100_000,
  roundCalls: 300_000,
  saturationMs: 2_000,
  latencyMs: 2_000,
  modelBurst: 10_000,
  modelClosedMs: 2_000,
  modelBestMs: 2_000,
  pairedDirectMs: 250,
  modelRounds: 3,
  modelBatchSizes: [16, 32, 64, 128, 256],
  defaultModelBatch: 64,
  soakRequests: 1_000_000,
  soakRate: 40_000,
  targetMs: 1_200,
  httpOverload: { ratePerSec: 6_000, connections: 1_500 },
  httpSteady: { ratePerSec: 2_500, connections: 256 },
  httpDurationMs: 5_000,
  streaming: { backlog: 256, loadMs: 6_000, maxBatchSize: 64, lognormalCap: 1000, uniformMax: 200 },
};

/**
 * `npm run bench -- --quick`: every scenario, small, once: a smoke test, not a measurement.
 *
 * @example
 * ```ts
 * const scenarios = buildPlan(QUICK, { silero: 64, mlp: 64 }, repoRoot);
 * ```
 */
export const QUICK: PlanSizes = {
  repetitions: 1,
  concurrentCalls: [1_000, 10_000],
  headlineCalls: 10_000,
  heapCalls: [10_000],
  warmup: 10_000,
  roundCalls: 20_000,
  saturationMs: 300,
  latencyMs: 300,
  modelBurst: 500,
  modelClosedMs: 300,
  modelBestMs: 300,
  pairedDirectMs: 50,
  modelRounds: 1,
  modelBatchSizes: [16, 64],
  defaultModelBatch: 64,
  soakRequests: 20_000,
  soakRate: 20_000,
  targetMs: 300,
  httpOverload: { ratePerSec: 6_000, connections: 1_500 },
  httpSteady: { ratePerSec: 2_500, connections: 256 },
  httpDurationMs: 1_000,
  streaming: { backlog: 128, loadMs: 2_000, maxBatchSize: 64, lognormalCap: 1000, uniformMax: 200 },
};

/**
 * `npm run bench -- --smoke`: every scenario at the smallest sizes that still exercise its code
 * (batches fill, windows close, the soak aborts, times out and fails some requests), run in one
 * process in a few seconds. Shows the benchmark works; measures nothing.
 *
 * @example
 * ```ts
 * const scenarios = buildPlan(SMOKE, { silero: SMOKE.defaultModelBatch, mlp: SMOKE.defaultModelBatch }, repoRoot);
 * ```
 */
export const SMOKE: PlanSizes = {
  repetitions: 1,
  concurrentCalls: [100, 1_000],
  headlineCalls: 1_000,
  heapCalls: [1_000],
  warmup: 200,
  roundCalls: 1_000,
  saturationMs: 50,
  latencyMs: 50,
  modelBurst: 64,
  modelClosedMs: 30,
  modelBestMs: 30,
  pairedDirectMs: 5,
  modelRounds: 1,
  modelBatchSizes: [4, 16],
  defaultModelBatch: 16,
  soakRequests: 2_000,
  soakRate: 20_000,
  targetMs: 30,
  httpOverload: { ratePerSec: 1_000, connections: 200 },
  httpSteady: { ratePerSec: 200, connections: 20 },
  httpDurationMs: 300,
  streaming: { backlog: 24, loadMs: 200, maxBatchSize: 8, lognormalCap: 40, uniformMax: 20 },
};

const BIG_HEAP = ['--max-old-space-size=4096'];

/**
 * The batch size the real-model batchers use, per model; the runner calibrates it in full mode.
 *
 * @example
 * ```ts
 * const batch: ModelBatchSizes = { silero: 256, mlp: 128 };
 * ```
 */
export type ModelBatchSizes = Readonly<Record<RealModelName, number>>;

/**
 * Every scenario of the issue with its cases, for one mode.
 *
 * @example
 * ```ts
 * const scenarios = buildPlan(QUICK, { silero: 64, mlp: 64 }, process.cwd());
 * ```
 */
export function buildPlan(sizes: PlanSizes, modelBatch: ModelBatchSizes, repoRoot: string): Scenario[] {
  return [
    overheadScenario(sizes),
    saturationScenario(sizes),
    latencyScenario(sizes),
    realModelScenario(sizes, modelBatch, repoRoot),
    soakScenario(sizes),
    latencyTargetScenario(sizes),
    httpScenario(sizes, repoRoot),
    streamingScenario(sizes),
  ];
}

/** Scenario 9's seed: the same output lengths for both ways of batching. */
const STREAMING_SEED = 9;

function streamingScenario(sizes: PlanSizes): Scenario {
  const { backlog, loadMs, maxBatchSize, lognormalCap, uniformMax } = sizes.streaming;
  const lognormal: LengthShape = { kind: 'lognormal', median: 30, sigma: 1, cap: lognormalCap };
  const uniform: LengthShape = { kind: 'uniform', min: 1, max: uniformMax };
  const model = { ...SIMULATED_MODEL, maxBatchSize, seed: STREAMING_SEED };
  const capacity = wholeBatchCapacity(outputLengths(lognormal, 100 * maxBatchSize, STREAMING_SEED), maxBatchSize, SIMULATED_MODEL.overheadMs, SIMULATED_MODEL.perItemMs);
  const rate = Math.round(0.8 * capacity);
  const groups = [
    { group: `log-normal lengths (median 30, σ 1, ≤ ${lognormalCap}), backlog of ${backlog}`, lengths: lognormal, load: { kind: 'backlog' as const, requests: backlog } },
    { group: `uniform lengths 1–${uniformMax}, backlog of ${backlog}`, lengths: uniform, load: { kind: 'backlog' as const, requests: backlog } },
    { group: `log-normal lengths, Poisson ${rate}/s (80% of whole-batch capacity)`, lengths: lognormal, load: { kind: 'poisson' as const, ratePerSec: rate, durationMs: loadMs } },
  ];
  const cases: BenchCase[] = [];
  for (const g of groups) {
    for (const mode of ['continuous', 'whole-batch'] as const) {
      cases.push({
        scenario: 's9',
        group: g.group,
        label: mode,
        config: `new StreamingBatcher({ maxBatchSize: ${maxBatchSize}, maxDelayMs: 2, ${mode === 'continuous' ? 'continuous: { init, runStep }' : 'runBatch: async function* (…)'} }), one slot`,
        task: { kind: 'streaming', mode, lengths: g.lengths, load: g.load, ...model },
      });
    }
  }
  return {
    id: 's9',
    title: `Streaming outputs: continuous batching against whole-batch streaming, simulated autoregressive model (a step: 5 ms + 0.05 ms per active item), batch ${maxBatchSize}`,
    repetitions: sizes.repetitions,
    cases,
  };
}

function overheadScenario(sizes: PlanSizes): Scenario {
  const rules: BatchRules = { maxBatchSize: 64, maxDelayMs: 0 };
  const cases: BenchCase[] = [];
  for (const n of sizes.concurrentCalls) {
    // The drop-ins beside the library they replace, and the floor: at the headline size only (scenario 1).
    for (const impl of n === sizes.headlineCalls ? [...IMPLEMENTATIONS, ...DROP_INS, ...FLOORS] : IMPLEMENTATIONS) {
      cases.push({
        scenario: 's1-s2',
        group: `n=${n}`,
        label: impl,
        config: configOf(impl, rules),
        // Warm-up: `warmup` calls in rounds of n (at most one round of 1M); timed: about `roundCalls` calls in 1–20 rounds.
        task: { kind: 'throughput', impl, n, rules, warmup: sizes.warmup, rounds: Math.max(1, Math.min(20, Math.round(sizes.roundCalls / n))) },
        nodeFlags: BIG_HEAP,
      });
    }
  }
  for (const n of sizes.heapCalls) {
    for (const impl of n === sizes.headlineCalls ? [...IMPLEMENTATIONS, ...DROP_INS, ...FLOORS] : IMPLEMENTATIONS) {
      cases.push({
        scenario: 's1-s2',
        group: `heap n=${n}`,
        label: impl,
        config: configOf(impl, rules),
        task: { kind: 'heap', impl, n, rules },
        nodeFlags: BIG_HEAP,
        // Heap per pending request repeats to ±1 byte; at 1M one forced-GC measurement takes ~8 s.
        ...(n >= 1_000_000 ? { maxRepetitions: 1 } : {}),
      });
    }
  }
  return { id: 's1-s2', title: 'Overhead and scaling: n concurrent calls, trivial async model, batch 64', repetitions: sizes.repetitions, cases };
}

function saturationScenario(sizes: PlanSizes): Scenario {
  const rules: BatchRules = { maxBatchSize: 64, maxDelayMs: 2 };
  const unbatchedCapacity = 1000 / (SIMULATED_MODEL.overheadMs + SIMULATED_MODEL.perItemMs);
  const batchedCapacity = (64 * 1000) / (SIMULATED_MODEL.overheadMs + 64 * SIMULATED_MODEL.perItemMs);
  const loads = [
    { group: 'a: 3x unbatched capacity', rate: Math.round(3 * unbatchedCapacity) },
    { group: 'b: 1.5x full-batch capacity', rate: Math.round(1.5 * batchedCapacity) },
  ];
  const cases: BenchCase[] = [];
  for (const load of loads) {
    const labels: Array<ImplName | 'model-direct'> = [...IMPLEMENTATIONS];
    if (load.group.startsWith('b')) labels.push('model-direct');
    for (const impl of labels) {
      cases.push({
        scenario: 's3',
        group: load.group,
        label: impl,
        config: impl === 'model-direct' ? 'the model alone, fed full batches of 64 back to back (its ceiling)' : configOf(impl, rules),
        task: { kind: 'saturation', impl, ratePerSec: load.rate, durationMs: sizes.saturationMs, rules, ...SIMULATED_MODEL },
      });
    }
  }
  return { id: 's3', title: 'Saturation: open-loop arrivals, model 5 ms + 0.05 ms/item, batch 64, delay 2 ms', repetitions: sizes.repetitions, cases };
}

function latencyScenario(sizes: PlanSizes): Scenario {
  const rules: BatchRules = { maxBatchSize: 64, maxDelayMs: 5 };
  const rate = Math.round(0.5 * ((64 * 1000) / (SIMULATED_MODEL.overheadMs + 64 * SIMULATED_MODEL.perItemMs)));
  const variants: Array<{ label: string; impl: ImplName; rules: BatchRules }> = [
    { label: 'rx-batcher', impl: 'rx-batcher', rules },
    { label: 'rx-batcher (maxConcurrentBatches ∞)', impl: 'rx-batcher', rules: { ...rules, maxConcurrentBatches: 1_000_000 } },
    ...IMPLEMENTATIONS.filter((impl) => impl !== 'rx-batcher' && impl !== 'unbatched').map((impl) => ({ label: impl, impl, rules })),
  ];
  const cases = variants.map(
    (variant): BenchCase => ({
      scenario: 's4',
      group: `poisson ${rate}/s`,
      label: variant.label,
      config: configOf(variant.impl, variant.rules),
      task: { kind: 'latency', impl: variant.impl, ratePerSec: rate, durationMs: sizes.latencyMs, rules: variant.rules, seed: 4, ...SIMULATED_MODEL },
    }),
  );
  return { id: 's4', title: 'Latency at moderate load: Poisson arrivals at 50% of batched capacity, delay 5 ms', repetitions: sizes.repetitions, cases };
}

function realModelScenario(sizes: PlanSizes, modelBatch: ModelBatchSizes, repoRoot: string): Scenario {
  const cases: BenchCase[] = [];
  const impls: ImplName[] = ['rx-batcher', 'dataloader', 'unbatched'];
  for (const model of ['silero', 'mlp'] as const) {
    const rules: BatchRules = { maxBatchSize: modelBatch[model], maxDelayMs: 0 };
    cases.push({
      scenario: 's5',
      group: `${model} best`,
      label: 'model-direct',
      config: `direct session.run on ready-made batches of ${sizes.modelBatchSizes.join('/')} (best reported)`,
      task: { kind: 'model-best', model, sizes: sizes.modelBatchSizes, durationMs: sizes.modelBestMs, repoRoot },
    });
    // rx-batcher with a second slot beside the default one: onnxruntime-node runs a batch on the
    // calling thread, so there is nothing for a second slot to overlap; this row checks that claim.
    const variants: { label: string; impl: ImplName; rules: BatchRules }[] = impls.map((impl) => ({ label: impl as string, impl, rules }));
    variants.splice(1, 0, { label: 'rx-batcher, 2 slots', impl: 'rx-batcher', rules: { ...rules, maxConcurrentBatches: 2 } });
    for (const v of variants) {
      cases.push({ scenario: 's5', group: `${model} burst`, label: v.label, config: configOf(v.impl, v.rules), task: { kind: 'model-burst', model, impl: v.impl, n: sizes.modelBurst, rules: v.rules, repoRoot, pairedDirectMs: sizes.pairedDirectMs, rounds: sizes.modelRounds } });
    }
    for (const v of variants) {
      cases.push({
        scenario: 's5',
        group: `${model} closed loop`,
        label: v.label,
        config: configOf(v.impl, v.rules),
        task: { kind: 'model-closed', model, impl: v.impl, clients: 64, durationMs: sizes.modelClosedMs, rules: v.rules, repoRoot, pairedDirectMs: sizes.pairedDirectMs, rounds: sizes.modelRounds },
      });
    }
  }
  return { id: 's5', title: 'Real models (onnxruntime-node, 1 thread): Silero VAD v6 and MLP 256→1024→1024→10', repetitions: sizes.repetitions, cases };
}

function soakScenario(sizes: PlanSizes): Scenario {
  const rules: BatchRules = { maxBatchSize: 64, maxDelayMs: 1, maxConcurrentBatches: 4 };
  return {
    id: 's6',
    title: `Soak: ${sizes.soakRequests} requests at ${sizes.soakRate}/s through one rx-batcher, ~1% aborted, ~1% timing out, ~1% failing`,
    repetitions: 1,
    cases: [
      {
        scenario: 's6',
        group: 'soak',
        label: 'rx-batcher',
        config: `${configOf('rx-batcher', rules)}, model 4 ms per batch`,
        task: { kind: 'soak', n: sizes.soakRequests, ratePerSec: sizes.soakRate, rules },
        nodeFlags: BIG_HEAP,
      },
    ],
  };
}

/** Scenario 7's objective under steady load, and under the slowdown (see bench/README.md for why two). */
export const TARGET_MS = { steady: 20, slowdown: 30 } as const;
/** The fixed `maxDelayMs` settings scenario 7 sweeps. */
export const FIXED_DELAYS: readonly number[] = [0, 1, 2, 5, 10, 20];

function latencyTargetScenario(sizes: PlanSizes): Scenario {
  const capacity = (64 * 1000) / (SIMULATED_MODEL.overheadMs + 64 * SIMULATED_MODEL.perItemMs);
  const runs = [
    { group: 'load 10%', share: 0.1, p99Ms: TARGET_MS.steady, slowdown: false },
    { group: 'load 50%', share: 0.5, p99Ms: TARGET_MS.steady, slowdown: false },
    { group: 'load 150%', share: 1.5, p99Ms: TARGET_MS.steady, slowdown: false },
    { group: 'load 10%, model 2× slower halfway', share: 0.1, p99Ms: TARGET_MS.slowdown, slowdown: true },
  ];
  const cases: BenchCase[] = [];
  for (const run of runs) {
    const ratePerSec = Math.round(run.share * capacity);
    const durationMs = run.slowdown ? 2 * sizes.targetMs : sizes.targetMs;
    const settings: Array<{ label: string; setting: { maxDelayMs: number } | { latencyTarget: number } }> = [
      ...FIXED_DELAYS.map((d) => ({ label: `maxDelayMs ${d}`, setting: { maxDelayMs: d } })),
      { label: `latencyTarget ${run.p99Ms} ms`, setting: { latencyTarget: run.p99Ms } },
    ];
    for (const { label, setting } of settings) {
      cases.push({
        scenario: 's7',
        group: run.group,
        label,
        config: `new Batcher({ maxBatchSize: 64, ${'maxDelayMs' in setting ? `maxDelayMs: ${setting.maxDelayMs}` : `latencyTarget: { p99Ms: ${setting.latencyTarget} }`} }), Poisson ${ratePerSec}/s`,
        task: {
          kind: 'latency-target', setting, p99Ms: run.p99Ms, ratePerSec, warmupMs: Math.round(sizes.targetMs / 6), durationMs,
          slowdown: run.slowdown, seed: 7, ...SIMULATED_MODEL,
        },
      });
    }
  }
  return { id: 's7', title: 'Latency target: latencyTarget against fixed maxDelayMs, Poisson arrivals, model 5 ms + 0.05 ms/item, batch 64', repetitions: sizes.repetitions, cases };
}

/**
 * The deadline of scenario 8's servers (the recipe's default), in ms.
 *
 * @example
 * ```ts
 * const late = latencies.filter((ms) => ms > HTTP_TIMEOUT_MS).length;
 * ```
 */
export const HTTP_TIMEOUT_MS = 1000;

function httpScenario(sizes: PlanSizes, repoRoot: string): Scenario {
  const durationMs = sizes.httpDurationMs;
  const group = (load: HttpLoad, name: string): string => `${name}: ${load.ratePerSec}/s, ${load.connections} conn.`;
  const overload = group(sizes.httpOverload, 'overload');
  const steady = group(sizes.httpSteady, 'steady');
  const common = { durationMs, timeoutMs: HTTP_TIMEOUT_MS, repoRoot };
  const recipe = 'examples/http-server, its defaults: maxBatchSize 64, maxDelayMs 2, maxQueueSize 256, timeoutMs 1000, maxEventLoopDelayMs 50';
  const floor = 'fastify answering every request 503 from its onRequest hook, before the body: what this machine can answer at all';
  const cases: BenchCase[] = [
    { scenario: 's8', group: overload, label: 'recipe', config: recipe, task: { kind: 'http-overload', server: 'recipe', ...sizes.httpOverload, ...common } },
    {
      scenario: 's8',
      group: overload,
      label: 'recipe, door by queue only',
      config: `${recipe}, but maxEventLoopDelayMs 0: no event-loop check (under-pressure off)`,
      task: { kind: 'http-overload', server: 'recipe', options: { maxEventLoopDelayMs: 0 }, ...sizes.httpOverload, ...common },
    },
    {
      scenario: 's8',
      group: overload,
      label: 'recipe, model on a thread',
      config: `${recipe}, with modelOnThread: Silero VAD on a worker thread, off the event loop`,
      task: { kind: 'http-overload', server: 'recipe', thread: true, ...sizes.httpOverload, ...common },
    },
    { scenario: 's8', group: overload, label: 'floor', config: floor, task: { kind: 'http-overload', server: 'floor', ...sizes.httpOverload, ...common } },
    { scenario: 's8', group: steady, label: 'recipe', config: recipe, task: { kind: 'http-overload', server: 'recipe', ...sizes.httpSteady, ...common } },
    {
      scenario: 's8',
      group: steady,
      label: 'recipe, door by queue only',
      config: `${recipe}, but maxEventLoopDelayMs 0`,
      task: { kind: 'http-overload', server: 'recipe', options: { maxEventLoopDelayMs: 0 }, ...sizes.httpSteady, ...common },
    },
    {
      scenario: 's8',
      group: steady,
      label: 'recipe, model on a thread',
      config: `${recipe}, with modelOnThread`,
      task: { kind: 'http-overload', server: 'recipe', thread: true, ...sizes.httpSteady, ...common },
    },
  ];
  return {
    id: 's8',
    title: `HTTP under overload: the model server of examples/http-server (Silero VAD), open-loop load for ${durationMs / 1000} s from an undici Pool in another process`,
    repetitions: 1,
    cases,
  };
}

function configOf(impl: ImplName, rules: BatchRules): string {
  return describeConfig(impl, rules);
}

/**
 * A one-line summary of a worker's metrics for the progress output.
 *
 * @example
 * ```ts
 * headline({ kind: 'throughput', … }, { requestsPerSec: 512000 }); // '512.0k req/s'
 * ```
 */
export function headline(task: Task, metrics: Metrics): string {
  const num = (key: string): number => (typeof metrics[key] === 'number' ? (metrics[key] as number) : Number.NaN);
  switch (task.kind) {
    case 'throughput':
      return `${(num('requestsPerSec') / 1000).toFixed(1)}k req/s, peak RSS ${num('peakRssMb').toFixed(0)} MB`;
    case 'heap':
      return `${num('heapBytesPerPending').toFixed(0)} B heap per pending request`;
    case 'saturation':
      return `${num('throughputPerSec').toFixed(0)}/s, mean batch ${num('meanBatchSize').toFixed(1)}, p99 ${num('latencyP99Ms').toFixed(1)} ms, backlog +${num('backlogGrowthPerSec').toFixed(0)}/s`;
    case 'latency':
      return `wait p50 ${num('waitP50Ms').toFixed(2)} / p99 ${num('waitP99Ms').toFixed(2)} ms, latency p99 ${num('latencyP99Ms').toFixed(1)} ms`;
    case 'model-best':
      return `best ${num('bestPerSec').toFixed(0)}/s at batch ${num('bestSize')}`;
    case 'model-burst':
    case 'model-closed':
      return `${num('throughputPerSec').toFixed(0)}/s, max |Δ| ${num('maxAbsDiff').toExponential(1)}`;
    case 'latency-target':
      return task.slowdown
        ? `halves: p99 ${num('first.latencyP99Ms').toFixed(1)} / ${num('second.latencyP99Ms').toFixed(1)} ms, goodput ${num('first.goodputPerSec').toFixed(0)} / ${num('second.goodputPerSec').toFixed(0)}/s`
        : `p99 ${num('latencyP99Ms').toFixed(1)} ms, goodput ${num('goodputPerSec').toFixed(0)}/s, mean batch ${num('meanBatchSize').toFixed(1)}`;
    case 'soak':
      return `${metrics.ok === true ? 'OK' : 'FAILED'}: ${num('settledTotal')} settled, heap ${num('heapChangePct').toFixed(1)}%, ${num('achievedPerSec').toFixed(0)}/s`;
    case 'http-overload':
      return `${num('ok')} × 200, ${num('overloaded')} × 503, ${num('late')} × 504, ${num('failed') + num('hung')} unanswered; p99 503 ${num('p99Ms503').toFixed(0)} ms, 200 ${num('p99Ms200').toFixed(0)} ms`;
    case 'streaming':
      return task.load.kind === 'backlog'
        ? `${num('chunksPerSec').toFixed(0)} chunks/s while backlogged, ${num('meanActivePerStep').toFixed(1)} active per step`
        : `first chunk p50 ${num('ttfcP50Ms').toFixed(1)} / p99 ${num('ttfcP99Ms').toFixed(1)} ms`;
    default:
      return '';
  }
}
