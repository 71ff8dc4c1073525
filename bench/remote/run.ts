// Scale-out benchmark (npm run bench:remote [-- --quick] [-- --per-worker] [-- --out DIR]): what a broker costs
// per request, and how one and two worker processes batch a simulated model, on Redis Streams
// and NATS JetStream, against the in-process Batcher. Starts private brokers (temp folder, unix
// socket or free port), one process per worker, stops everything by PID; writes remote.json to
// bench/results/ (a full run: the committed results) or .cache/bench/quick/ (--quick), or DIR.
// --per-worker runs only the sim-model rows below (to .cache/bench/per-worker/ unless --out);
// --open-loop-nats adds the open-loop rows on NATS (off by default: see OPEN_LOOP_TRANSPORTS).
// --signing runs only the trivial-model rows, without and with signing (auth), on both brokers
// (to .cache/bench/signing/ unless --out): what HMAC signing costs per request.
// --chaos runs only the chaos rows (every connection cut every second; to .cache/bench/chaos/ unless --out).
//
// Per-worker overhead: the simulated model costs time but no CPU (an accelerator), so worker
// processes sharing this machine scale as they would on separate GPUs. Open-loop arrivals at
// 1.8x one worker's full-batch capacity keep the workers' stream full: one worker should serve
// ≥ 0.9 of the model's capacity, two ≥ 1.8x one. The closed loop with 64 callers measures the
// round trip only (one worker takes all 64 in one batch): remote ≥ 0.85x the in-process Batcher.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Batcher } from '../../lib';
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, v8Codec, type BatchTransport, type WorkerStats } from '../../lib/remote';
import { signerFor } from '../../lib/remote/auth';
import { encodeReplies } from '../../lib/remote/wire';
import { startNats, startRedis, type TestBroker } from '../../spec/remote/brokers';
import { startProxy } from '../../spec/remote/support/tcpProxy';
import { openLoop, uniformArrivals } from '../harness/openLoop';
import { benchModel, SIM_MODEL, simCapacityPerSec, type BenchModelKind } from './model';

const ROOT = resolve(__dirname, '../..');
const quick = process.argv.includes('--quick');
/** Only the sim-model rows (closed loop, open loop): a subset, so never into bench/results/ by default. */
const perWorkerOnly = process.argv.includes('--per-worker');
/** Only the trivial-model rows, unsigned and signed: a subset, so never into bench/results/ by default. */
const signingOnly = process.argv.includes('--signing');
/** Only the chaos rows: a subset, so never into bench/results/ by default. */
const chaosOnly = process.argv.includes('--chaos');
/** The key of the signed rows (producer and workers). */
const AUTH_KEY = randomBytes(32);
const outArg = process.argv.indexOf('--out');
if (outArg !== -1 && process.argv[outArg + 1] === undefined) throw new TypeError('--out needs a folder');
const outDir =
  outArg !== -1
    ? isAbsolute(process.argv[outArg + 1]) ? process.argv[outArg + 1] : resolve(process.argv[outArg + 1])
    : quick ? join(ROOT, '.cache', 'bench', 'quick') : chaosOnly ? join(ROOT, '.cache', 'bench', 'chaos') : signingOnly ? join(ROOT, '.cache', 'bench', 'signing') : perWorkerOnly ? join(ROOT, '.cache', 'bench', 'per-worker') : join(ROOT, 'bench', 'results');
const plan = quick
  ? { idleRequests: 200, warmupMs: 200, measureMs: 700, concurrency: 64, runs: 1, drainMs: 2000 }
  : { idleRequests: 2000, warmupMs: 1000, measureMs: 4000, concurrency: 64, runs: 3, drainMs: 5000 };
/** Open-loop producers' timeoutMs: a request not answered this long after it was issued (the load's length plus drainMs) counts as unanswered. */
const OPEN_LOOP_TIMEOUT_MS = plan.warmupMs + plan.measureMs + plan.drainMs;

/** Offered load of the open-loop rows, as a multiple of one worker's full-batch capacity. */
const OPEN_LOOP_LOAD = 1.8;
/** The sim model's full-batch capacity (64 items per 8.2 ms ≈ 7805/s) and the open-loop arrival rate (≈ 14,049/s). */
const SIM_CAPACITY = simCapacityPerSec(64);
const OPEN_LOOP_RATE = Math.round(OPEN_LOOP_LOAD * SIM_CAPACITY);
/**
 * Transports the open-loop rows run on. Not NATS by default: on a 2-core machine its producer
 * could not keep up with ~14,000 requests/s (one core busy, memory growing by GBs, answers
 * stalled: 0 requests/s served in the window), so the rows measured the producer, not the
 * workers, and took minutes. `--open-loop-nats` adds them.
 */
const OPEN_LOOP_TRANSPORTS: readonly string[] = process.argv.includes('--open-loop-nats') ? ['redis', 'nats'] : ['redis'];
/** The goals of the per-worker overhead rows (issue "One engine for every face", performance). */
const GOALS = { capacityFraction: 0.9, twoWorkers: 1.8, vsInProcess: 0.85 } as const;
/** The chaos row: a TCP proxy between the broker and producer and worker cuts every connection this often; the worker's claimIdleMs. */
const CHAOS_CUT_EVERY_MS = 1000;
const CHAOS_CLAIM_IDLE_MS = 1000;
const SCENARIO = {
  closed: 'sim model, 64 callers (closed loop: round-trip cost only)',
  open: `sim model, open loop at ${OPEN_LOOP_LOAD}× one worker's capacity`,
  chaos: `sim model, 64 callers, every connection cut every ${CHAOS_CUT_EVERY_MS} ms`,
} as const;

/** One line of the results table. */
interface Row {
  [column: string]: string | number | null;
  transport: string;
  scenario: string;
  workers: number;
  'requests/s': number;
  'p50 ms': number;
  'p99 ms': number;
  'mean batch': number | null;
  'CPU µs/request': number | null;
}

type Run = (x: number) => Promise<number>;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** One request at a time: the round trip of an idle system. */
async function idle(run: Run, n: number): Promise<{ p50: number; p99: number; perSecond: number }> {
  for (let i = 0; i < Math.min(50, n); i++) await run(i); // warm up connections and JIT
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const y = await run(i);
    latencies.push(performance.now() - t);
    if (y !== 2 * i + 1) throw new Error(`wrong answer for ${i}: ${y}`);
  }
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), perSecond: (n / elapsed) * 1000 };
}

/** Called when the measuring window opens and when it closes (to read CPU time or worker stats). */
interface WindowHooks {
  atStart(): Promise<void>;
  atEnd(): Promise<void>;
}
const NO_HOOKS: WindowHooks = { atStart: async () => undefined, atEnd: async () => undefined };

/** `concurrency` callers in closed loops; counts and times only what finishes inside the measuring window. */
async function closedLoop(run: Run, hooks: WindowHooks): Promise<{ perSecond: number; p50: number; p99: number; done: number }> {
  let phase: 'warmup' | 'measure' | 'over' = 'warmup';
  const latencies: number[] = [];
  let next = 0;
  const loops = Array.from({ length: plan.concurrency }, async () => {
    while (phase !== 'over') {
      const x = next++;
      const t = performance.now();
      const counted = phase === 'measure';
      const y = await run(x);
      if (y !== 2 * x + 1) throw new Error(`wrong answer for ${x}: ${y}`);
      if (counted && phase === 'measure') latencies.push(performance.now() - t);
      // The in-process batcher can answer on microtasks alone: let timers run now and then.
      if ((x & 63) === 0) await new Promise((r) => setImmediate(r));
    }
  });
  await sleep(plan.warmupMs);
  await hooks.atStart();
  phase = 'measure';
  const started = performance.now();
  await sleep(plan.measureMs);
  phase = 'over';
  const elapsed = performance.now() - started;
  await hooks.atEnd();
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  return { perSecond: (latencies.length / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), done: latencies.length };
}

/**
 * Open loop: requests issued at `ratePerSec` whether or not earlier ones were answered, for the
 * warm-up and the measuring window, each awaited for its latency. Served/s counts the answers
 * that arrive inside the window; offered/s the requests issued in it (below the rate when this
 * process falls behind); latencies are those of requests issued in it, however late they are
 * answered (a request that times out counts as unanswered, with an infinite latency). Returns
 * once every request is settled (a backlog drains first). Any other failure throws.
 */
async function openLoopRun(run: Run, ratePerSec: number, hooks: WindowHooks): Promise<{ offeredPerSec: number; servedPerSec: number; p50: number; p99: number; unanswered: number }> {
  const totalMs = plan.warmupMs + plan.measureMs;
  const arrivals = uniformArrivals(ratePerSec, Math.floor((ratePerSec * totalMs) / 1000));
  const latencies: number[] = [];
  const answers: Promise<void>[] = [];
  let issuedInWindow = 0;
  let answeredInWindow = 0;
  let failures = 0;
  let firstFailure: unknown;
  let unanswered = 0;
  const windowStart = performance.now() + plan.warmupMs;
  const windowEnd = windowStart + plan.measureMs;
  const atStart = sleep(plan.warmupMs).then(() => hooks.atStart());
  const atEnd = sleep(totalMs).then(() => hooks.atEnd());
  // At most one batch's worth per event-loop turn: a producer that falls behind keeps reading
  // answers between bursts instead of stalling them (offered/s then shows the shortfall).
  await openLoop(arrivals, (x) => {
    const t = performance.now();
    const counted = t >= windowStart && t < windowEnd;
    if (counted) issuedInWindow++;
    answers.push(
      run(x).then(
        (y) => {
          if (y !== 2 * x + 1) throw new Error(`wrong answer for ${x}: ${y}`);
          const done = performance.now();
          if (done >= windowStart && done < windowEnd) answeredInWindow++;
          if (counted) latencies.push(done - t);
        },
      ).catch((error: unknown) => {
        if (error instanceof Error && error.name === 'RequestTimeoutError') {
          unanswered++;
          if (counted) latencies.push(Infinity);
          return;
        }
        failures++;
        firstFailure ??= error;
      }),
    );
  }, { maxPerTurn: 64 });
  await Promise.all([atStart, atEnd]);
  await Promise.all(answers);
  if (failures > 0) throw new Error(`${failures} of ${arrivals.length} open-loop requests failed; the first: ${String(firstFailure)}`);
  latencies.sort((a, b) => a - b);
  return {
    offeredPerSec: (issuedInWindow / plan.measureMs) * 1000,
    servedPerSec: (answeredInWindow / plan.measureMs) * 1000,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    unanswered,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Batches run and requests they held, summed over workers' stats (only fields every version of the worker keeps). */
function batchTotals(stats: readonly { batches: number; meanBatchSize: number }[]): { batches: number; items: number } {
  return { batches: stats.reduce((a, s) => a + s.batches, 0), items: stats.reduce((a, s) => a + s.meanBatchSize * s.batches, 0) };
}
/** Mean batch size between two readings of {@link batchTotals}. */
const meanBatchBetween = (start: { batches: number; items: number }, end: { batches: number; items: number }): number =>
  end.batches > start.batches ? (end.items - start.items) / (end.batches - start.batches) : NaN;

// --- CPU accounting: this process, the worker processes (over IPC), the broker (/proc) ---

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
function brokerCpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks; // utime + stime
}
const ownCpuMicros = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

// --- worker processes ---

/** A worker's answer to { type: 'report' }: its CPU time so far (µs), when it read it (its own performance.now()), its stats. */
interface WorkerReport {
  cpuMicros: number;
  at: number;
  stats: WorkerStats;
}

interface WorkerProcess {
  child: ChildProcess;
  report(): Promise<WorkerReport>;
  stop(): Promise<void>;
}

async function startWorker(kind: 'redis' | 'nats', url: string, subject: string, model: BenchModelKind, maxDelayMs: number, signed = false, claimIdleMs?: number): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'worker.ts')], {
    cwd: ROOT,
    env: {
      ...process.env, RXB_TRANSPORT: kind, RXB_URL: url, RXB_SUBJECT: subject, RXB_MODEL: model, RXB_MAX_BATCH: '64', RXB_MAX_DELAY_MS: String(maxDelayMs), RXB_MAX_CONCURRENT: '1',
      ...(signed ? { RXB_AUTH_KEY: AUTH_KEY.toString('base64') } : {}),
      ...(claimIdleMs !== undefined ? { RXB_CLAIM_IDLE_MS: String(claimIdleMs) } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((ready, fail) => {
    child.once('message', () => ready());
    child.once('exit', (code) => fail(new Error(`a benchmark worker exited (${code}) before it was ready`)));
  });
  return {
    child,
    report: () =>
      new Promise((r) => {
        child.once('message', (m: WorkerReport) => r(m));
        child.send({ type: 'report' });
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// --- scenarios ---

async function inProcessRows(): Promise<Row[]> {
  if (chaosOnly) return [];
  if (signingOnly) return [signingRow()];
  if (!perWorkerOnly) return [signingRow(), ...(await inProcessTrivialRows()), ...(await inProcessSimRows())];
  return [...(perWorkerOnly ? [] : await inProcessTrivialRows()), ...(await inProcessSimRows())];
}

/**
 * What signing alone costs, in this process: the producer's MAC of a request (an 8-byte input
 * with a deadline), the worker's check of it, and the MAC of a one-reply frame made and
 * checked. Frames carry every reply of a batch to one producer, so under load their share per
 * request is smaller.
 */
function signingRow(): Row {
  const signer = signerFor([AUTH_KEY]);
  const message = { id: 'AbCdEfGh.1k2', replyTo: 'rxb:reply:0123456789abcdef', body: v8Codec.encode(12345), deadline: Date.now() + 2000 };
  const payload = encodeReplies([[message.id, 'ok', v8Codec.encode(24691)]]);
  const once = (): void => {
    const mac = signer.signRequest('bench', message);
    if (signer.verifyRequest('bench', { ...message, mac }) !== 0) throw new Error('a request MAC did not verify');
    if (signer.openFrame('bench', message.replyTo, signer.sealFrame('bench', message.replyTo, payload)) === undefined) throw new Error('a frame MAC did not verify');
  };
  const n = quick ? 5000 : 50_000;
  for (let i = 0; i < n / 10; i++) once(); // warm up
  const cpu0 = ownCpuMicros();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) once();
  const cpu = ownCpuMicros() - cpu0;
  return { transport: 'in-process', scenario: 'signing alone: MAC a request, check it, MAC and check a one-reply frame', workers: 1, 'requests/s': round((n / (performance.now() - t0)) * 1000, 0), 'p50 ms': NaN, 'p99 ms': NaN, 'mean batch': null, 'CPU µs/request': round(cpu / n, 1) };
}

/** Idle round trip and 64 callers on the trivial model, in this process. */
async function inProcessTrivialRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const trivial = new Batcher<number, number>({ runBatch: benchModel('trivial'), maxBatchSize: 64 });
  const i = await idle((x) => trivial.run(x), plan.idleRequests);
  rows.push({ transport: 'in-process', scenario: 'idle round trip', workers: 1, 'requests/s': round(i.perSecond, 0), 'p50 ms': round(i.p50, 3), 'p99 ms': round(i.p99, 3), 'mean batch': 1, 'CPU µs/request': null });
  let cpu0 = 0;
  const load = await closedLoop((x) => trivial.run(x), { atStart: async () => void (cpu0 = ownCpuMicros()), atEnd: async () => undefined });
  const loadCpu = ownCpuMicros() - cpu0;
  rows.push({ transport: 'in-process', scenario: 'trivial, 64 callers', workers: 1, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 3), 'p99 ms': round(load.p99, 3), 'mean batch': round(trivial.stats().meanBatchSize, 1), 'CPU µs/request': round(loadCpu / load.done, 1) });
  await trivial.stop();
  return rows;
}

/** The sim model through one in-process Batcher: the references of the per-worker overhead rows. */
async function inProcessSimRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const sim = new Batcher<number, number>({ runBatch: benchModel('sim'), maxBatchSize: 64, maxDelayMs: 2 });
  const s = await closedLoop((x) => sim.run(x), NO_HOOKS);
  rows.push({ transport: 'in-process', scenario: SCENARIO.closed, workers: 1, 'requests/s': round(s.perSecond, 0), 'p50 ms': round(s.p50, 2), 'p99 ms': round(s.p99, 2), 'mean batch': round(sim.stats().meanBatchSize, 1), 'CPU µs/request': null });
  await sim.stop();
  // The same open loop as the workers get, on one in-process Batcher: the model's own ceiling
  // (timers fire late by a fraction of a ms), a reference for the workers' capacity fraction.
  const open = new Batcher<number, number>({ runBatch: benchModel('sim'), maxBatchSize: 64, maxDelayMs: 2 });
  const read = (): Reading => ({ ...batchTotals([open.stats()]), producer: { cpuMicros: ownCpuMicros(), at: performance.now() }, workers: [], broker: undefined });
  let start: Reading | undefined;
  let end: Reading | undefined;
  const o = await openLoopRun((x) => open.run(x), OPEN_LOOP_RATE, { atStart: async () => void (start = read()), atEnd: async () => void (end = read()) });
  rows.push(openLoopRow('in-process', 1, o, start!, end!));
  await open.stop();
  return rows;
}

/** One process's CPU time (µs) and when it was read, on that process's own clock (ms). */
interface CpuSample {
  cpuMicros: number;
  at: number;
}

/** Worker batch totals and the CPU time of every process involved (this one, workers, broker) at the start or end of a window. */
interface Reading {
  batches: number;
  items: number;
  producer: CpuSample;
  workers: CpuSample[];
  broker: CpuSample | undefined;
}

/** CPU µs per second of one process between two samples; NaN when they are too close to tell (this process was blocked). */
function cpuRate(start: CpuSample | undefined, end: CpuSample | undefined): number {
  if (start === undefined || end === undefined || end.at - start.at < 0.5 * plan.measureMs) return NaN;
  return ((end.cpuMicros - start.cpuMicros) / (end.at - start.at)) * 1000;
}

/**
 * A row of the open-loop scenario; its ratios and goals are added per pass by {@link addRatios}.
 * CPU: each process's CPU rate over the window (its own clock); CPU cores is their sum (near
 * the machine's core count, the processes starved each other), the µs columns each rate ÷ the
 * requests answered per second.
 */
function openLoopRow(transport: string, workers: number, o: Awaited<ReturnType<typeof openLoopRun>>, start: Reading, end: Reading): Row {
  const producer = cpuRate(start.producer, end.producer);
  const worker = start.workers.reduce((a, s, i) => a + cpuRate(s, end.workers[i]), 0);
  const broker = start.broker === undefined ? 0 : cpuRate(start.broker, end.broker);
  const perRequest = (rate: number): number => round(rate / o.servedPerSec, 1);
  const row: Row = {
    transport, scenario: SCENARIO.open, workers, 'requests/s': round(o.servedPerSec, 0), 'p50 ms': round(o.p50, 2), 'p99 ms': round(o.p99, 2),
    'mean batch': round(meanBatchBetween(start, end), 1), 'CPU µs/request': perRequest(producer + worker + broker), 'offered/s': round(o.offeredPerSec, 0),
    unanswered: o.unanswered,
    'CPU cores': round((producer + worker + broker) / 1e6, 2),
  };
  if (start.broker !== undefined) Object.assign(row, { 'CPU producer µs': perRequest(producer), 'CPU worker µs': perRequest(worker), 'CPU broker µs': perRequest(broker) });
  return row;
}

async function brokerRows(kind: 'redis' | 'nats', broker: TestBroker, transportTo: (url: string) => BatchTransport): Promise<Row[]> {
  const transport = (): BatchTransport => transportTo(broker.url);
  const rows: Row[] = [];
  let subjects = 0;
  const subject = (): string => `bench-${Date.now().toString(36)}-${++subjects}`;

  // Idle round trip and CPU per request: one worker process, trivial model; then the same
  // with requests and replies signed (auth on producer and worker).
  for (const signed of perWorkerOnly || chaosOnly ? [] : [false, true]) {
    const s = subject();
    const worker = await startWorker(kind, broker.url, s, 'trivial', 0, signed);
    const producer = remoteBatcher<number, number>(transport(), s, { timeoutMs: 30_000, ...(signed ? { auth: { keys: [AUTH_KEY] } } : {}) });
    const signedTag = signed ? ', signed' : '';
    try {
      const i = await idle((x) => producer.run(x), plan.idleRequests);
      rows.push({ transport: kind, scenario: `idle round trip${signedTag}`, workers: 1, 'requests/s': round(i.perSecond, 0), 'p50 ms': round(i.p50, 3), 'p99 ms': round(i.p99, 3), 'mean batch': 1, 'CPU µs/request': null });
      let start = { own: 0, worker: 0, broker: 0 };
      const read = async () => ({ own: ownCpuMicros(), worker: (await worker.report()).cpuMicros, broker: brokerCpuMicros(broker.pid()) });
      let end = start;
      const load = await closedLoop((x) => producer.run(x), { atStart: async () => void (start = await read()), atEnd: async () => void (end = await read()) });
      const per = (k: keyof typeof start): number => (end[k] - start[k]) / load.done;
      const stats = (await worker.report()).stats;
      rows.push({
        transport: kind, scenario: `trivial, 64 callers${signedTag}`, workers: 1, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 2), 'p99 ms': round(load.p99, 2),
        'mean batch': round(stats.meanBatchSize, 1), 'CPU µs/request': round(per('own') + per('worker') + per('broker'), 1),
        'CPU producer µs': round(per('own'), 1), 'CPU worker µs': round(per('worker'), 1), 'CPU broker µs': round(per('broker'), 1),
      });
    } finally {
      await producer.stop();
      await worker.stop();
    }
  }

  // Throughput and batch size on the simulated model, 64 callers in closed loops: one, then two
  // worker processes. One worker already takes all 64 callers in one batch, so a second one has
  // nothing to add: these rows measure the round trip through the broker, not scale-out.
  for (const count of signingOnly || chaosOnly ? [] : [1, 2]) {
    const s = subject();
    const workers = await Promise.all(Array.from({ length: count }, () => startWorker(kind, broker.url, s, 'sim', 2)));
    const producer = remoteBatcher<number, number>(transport(), s, { timeoutMs: 30_000 });
    try {
      const load = await closedLoop((x) => producer.run(x), NO_HOOKS);
      const totals = batchTotals((await Promise.all(workers.map((w) => w.report()))).map((r) => r.stats));
      rows.push({ transport: kind, scenario: SCENARIO.closed, workers: count, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 2), 'p99 ms': round(load.p99, 2), 'mean batch': round(totals.items / totals.batches, 1), 'CPU µs/request': null });
    } finally {
      await producer.stop();
      await Promise.all(workers.map((w) => w.stop()));
    }
  }

  // Chaos: the closed loop above with one worker, through a TCP proxy that cuts every
  // connection of the producer and the worker once a second. Requests whose reply was lost are
  // re-sent once the reply subscription is back; deliveries cut short wait for claimIdleMs.
  for (const count of signingOnly || perWorkerOnly ? [] : [1]) {
    const s = subject();
    const proxy = await startProxy(kind === 'redis' ? { path: broker.url } : { port: Number(new URL(broker.url).port) });
    const workers = await Promise.all(Array.from({ length: count }, () => startWorker(kind, proxy.url(kind), s, 'sim', 2, false, CHAOS_CLAIM_IDLE_MS)));
    const producer = remoteBatcher<number, number>(transportTo(proxy.url(kind)), s, { timeoutMs: 30_000 });
    let cuts = 0;
    const cutter = setInterval(() => (proxy.cut(), cuts++), CHAOS_CUT_EVERY_MS);
    try {
      const load = await closedLoop((x) => producer.run(x), NO_HOOKS);
      const totals = batchTotals((await Promise.all(workers.map((w) => w.report()))).map((r) => r.stats));
      const p = producer.stats();
      rows.push({
        transport: kind, scenario: SCENARIO.chaos, workers: count, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 2), 'p99 ms': round(load.p99, 2),
        'mean batch': round(totals.items / totals.batches, 1), 'CPU µs/request': null, cuts, resent: p.resent, 'timed out': p.timedOut,
      });
    } finally {
      clearInterval(cutter);
      await producer.stop();
      await Promise.all(workers.map((w) => w.stop()));
      await proxy.close();
    }
  }

  // Per-worker overhead: open-loop arrivals at 1.8x one worker's full-batch capacity keep the
  // stream full, so each worker should pull full batches back to back. One worker, then two.
  for (const count of OPEN_LOOP_TRANSPORTS.includes(kind) && !signingOnly && !chaosOnly ? [1, 2] : []) {
    const s = subject();
    const workers = await Promise.all(Array.from({ length: count }, () => startWorker(kind, broker.url, s, 'sim', 2)));
    const producer = remoteBatcher<number, number>(transport(), s, { timeoutMs: OPEN_LOOP_TIMEOUT_MS });
    try {
      const read = async (): Promise<Reading> => {
        const reports = await Promise.all(workers.map((w) => w.report()));
        const at = performance.now();
        return {
          ...batchTotals(reports.map((r) => r.stats)),
          producer: { cpuMicros: ownCpuMicros(), at },
          workers: reports.map((r) => ({ cpuMicros: r.cpuMicros, at: r.at })),
          broker: { cpuMicros: brokerCpuMicros(broker.pid()), at },
        };
      };
      let start: Reading | undefined;
      let end: Reading | undefined;
      const o = await openLoopRun((x) => producer.run(x), OPEN_LOOP_RATE, { atStart: async () => void (start = await read()), atEnd: async () => void (end = await read()) });
      rows.push(openLoopRow(kind, count, o, start!, end!));
    } finally {
      await producer.stop();
      await Promise.all(workers.map((w) => w.stop()));
    }
  }
  return rows;
}

/**
 * Adds, within one pass, the ratios the goals are about: the open-loop rows' capacity fraction
 * (served ÷ the workers' full-batch capacity) and, for two workers, × one worker; the closed-loop
 * rows' × in-process (remote throughput ÷ the in-process Batcher's).
 */
function addRatios(rows: Row[]): Row[] {
  const find = (transport: string, scenario: string, workers: number): Row | undefined =>
    rows.find((r) => r.transport === transport && r.scenario === scenario && r.workers === workers);
  const inProcess = find('in-process', SCENARIO.closed, 1);
  return rows.map((row) => {
    if (row.scenario === SCENARIO.open) {
      const one = find(row.transport, SCENARIO.open, 1)!;
      return { ...row, 'capacity fraction': round(row['requests/s'] / (row.workers * SIM_CAPACITY), 3), '× 1 worker': row.workers === 1 ? null : round(row['requests/s'] / one['requests/s'], 2) };
    }
    if (row.scenario === SCENARIO.closed && row.transport !== 'in-process' && inProcess !== undefined) {
      return { ...row, '× in-process': round(row['requests/s'] / inProcess['requests/s'], 2) };
    }
    return row;
  });
}

/** One goal of the per-worker overhead rows, judged on the medians. */
interface Target {
  [column: string]: string | number | null;
  transport: string;
  target: string;
  measured: string;
  met: 'yes' | 'no' | 'n/a';
}

/**
 * Writes each goal into its row (`goal`, `met`) and lists them as targets, the way
 * `latest.json` lists the in-process benchmark's.
 */
function judge(rows: Row[]): { rows: Row[]; targets: Target[] } {
  const targets: Target[] = [];
  const judged = rows.map((row) => {
    const goal = goalOf(row);
    if (goal === undefined) return row;
    const value = row[goal.column];
    const met = typeof value === 'number' && Number.isFinite(value) ? (value >= goal.atLeast ? 'yes' : 'no') : 'n/a';
    targets.push({
      transport: row.transport,
      target: `${goal.text}: ${goal.column} ≥ ${goal.atLeast}`,
      measured: `${show(value)} (${show(row['requests/s'])} requests/s, mean batch ${show(row['mean batch'])}, p50 ${show(row['p50 ms'])} ms, p99 ${show(row['p99 ms'])} ms)`,
      met,
    });
    return { ...row, goal: `${goal.column} ≥ ${goal.atLeast}`, met };
  });
  return { rows: judged, targets };
}

/** A number for the targets' text; '–' for one not measured (NaN) or a latency never reached (unanswered requests). */
const show = (x: string | number | null | undefined): string => (typeof x === 'number' && !Number.isFinite(x) ? '–' : String(x ?? '–'));

function goalOf(row: Row): { column: string; atLeast: number; text: string } | undefined {
  if (row.transport === 'in-process') return undefined;
  if (row.scenario === SCENARIO.open && row.workers === 1) {
    return { column: 'capacity fraction', atLeast: GOALS.capacityFraction, text: `1 worker, open loop at ${OPEN_LOOP_LOAD}× its capacity, serves` };
  }
  if (row.scenario === SCENARIO.open && row.workers === 2) {
    return { column: '× 1 worker', atLeast: GOALS.twoWorkers, text: `2 workers, open loop at ${OPEN_LOOP_LOAD}× one worker's capacity, serve` };
  }
  if (row.scenario === SCENARIO.closed && row.workers === 1) {
    return { column: '× in-process', atLeast: GOALS.vsInProcess, text: '1 worker, 64 closed-loop callers (round-trip cost only), serves' };
  }
  return undefined;
}

/** One pass over every scenario, each broker started fresh. */
async function onePass(): Promise<Row[]> {
  const rows: Row[] = await inProcessRows();
  const redis = await startRedis();
  try {
    rows.push(...(await brokerRows('redis', redis, (url) => redisTransport({ url }))));
  } finally {
    await redis.stop();
  }
  const nats = await startNats();
  try {
    rows.push(...(await brokerRows('nats', nats, (servers) => natsTransport({ servers }))));
  } finally {
    await nats.stop();
  }
  return addRatios(rows);
}

/** The median of each numeric column over the passes, plus the range of requests/s. */
function medianRows(passes: Row[][]): Row[] {
  const median = (xs: number[]): number => {
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  };
  return passes[0].map((first, i) => {
    const same = passes.map((pass) => pass[i]);
    const row: Row = { ...first };
    // Ratio columns too: the median of ratios each taken within one pass, not a ratio of medians.
    for (const [column, value] of Object.entries(first)) {
      if (typeof value === 'number' && column !== 'workers') row[column] = median(same.map((r) => r[column] as number));
    }
    const rates = same.map((r) => r['requests/s']);
    row['requests/s range'] = `${Math.min(...rates)}–${Math.max(...rates)}`;
    return row;
  });
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0].toFixed(2);
  console.log(
    `scale-out benchmark${quick ? ' (quick)' : ''}: ${plan.concurrency} closed-loop callers or open-loop arrivals at ${OPEN_LOOP_RATE}/s, batch 64, ` +
      `${plan.measureMs} ms windows after ${plan.warmupMs} ms warm-up, median of ${plan.runs} pass(es)`,
  );
  const passes: Row[][] = [];
  for (let pass = 1; pass <= plan.runs; pass++) {
    passes.push(await onePass());
    if (plan.runs > 1) console.log(`pass ${pass}/${plan.runs} done`);
  }
  const { rows, targets } = judge(medianRows(passes));
  console.table(rows);
  console.table(targets);
  mkdirSync(outDir, { recursive: true });
  const results = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    ...(perWorkerOnly ? { subset: 'per-worker overhead rows only (--per-worker)' } : {}),
    ...(signingOnly ? { subset: 'trivial-model rows only, unsigned and signed (--signing)' } : {}),
    ...(chaosOnly ? { subset: 'chaos rows only (--chaos)' } : {}),
    passes: plan.runs,
    // Load averages: other work on a shared machine shows here, and in every number.
    machine: { cpus: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg()[0].toFixed(2) },
    notes: [
      'Brokers, producer and worker processes share this machine: the trivial-model rows measure per-request overhead, not scale-out. The sim model costs time but no CPU, so its open-loop rows can show scale-out across worker processes, as long as the machine has CPU to spare (see CPU cores).',
      `sim model: a simulated accelerator (a timer, no CPU), one call at a time, ${SIM_MODEL.overheadMs} ms + ${SIM_MODEL.perItemMs} ms per item; workers use maxBatchSize 64, maxDelayMs 2, maxConcurrentBatches 1. trivial: 2x+1 at once.`,
      `Per-worker overhead (open loop): requests issued at ${OPEN_LOOP_RATE}/s (${OPEN_LOOP_LOAD}× one worker's full-batch capacity, 64 per ${SIM_MODEL.overheadMs + 64 * SIM_MODEL.perItemMs} ms = ${Math.round(SIM_CAPACITY)}/s) without waiting for answers, each awaited for its latency. requests/s counts answers inside the ${plan.measureMs} ms window; capacity fraction = that ÷ (workers × ${Math.round(SIM_CAPACITY)}), so two workers offered ${OPEN_LOOP_LOAD}× one's capacity top out at ${(OPEN_LOOP_LOAD / 2).toFixed(2)}; × 1 worker = 2 workers ÷ 1 worker in the same pass; offered/s = requests issued in the window. One worker is overloaded, so its latencies include a growing backlog. unanswered: requests not answered within ${OPEN_LOOP_TIMEOUT_MS / 1000} s of being issued (the producer's timeoutMs: the load's length plus ${plan.drainMs / 1000} s); p50/p99 are empty when more than half / 1% of the window's requests went unanswered. CPU cores: CPU time of producer, workers and broker over the window ÷ its length (this machine has ${availableParallelism()}); CPU µs columns: each process's CPU rate ÷ requests answered per second (the producer also pays for the requests still queued).`,
      'One producer process (this one) issues every open-loop request, at most 64 per event-loop turn: at ~14k/s it needs much of a core (CPU producer µs × requests/s), so on a small or busy machine offered/s falls short of the rate and the 2-worker row is bounded by the producer, not the workers.',
      'Closed loop (64 callers): one worker already takes all 64 callers in one batch, so these rows measure the round trip through the broker, not scale-out; × in-process = remote ÷ the in-process Batcher on the same model in the same pass.',
      'goal/met and targets: the goals of the per-worker overhead rows, judged on the medians.',
      'CPU µs/request: producer + worker + broker CPU time during the measuring window, divided by requests answered in it.',
      '…, signed: the same with auth on producer and worker (HMAC-SHA-256 of every request and reply frame, one key).',
      `Chaos: the sim-model closed loop with one worker process (claimIdleMs ${CHAOS_CLAIM_IDLE_MS}), producer and worker reaching the broker through a TCP proxy that resets every connection every ${CHAOS_CUT_EVERY_MS} ms, warm-up included; cuts: how many in the pass, resent: requests the producer sent again after its reply subscription came back, timed out: callers that got RequestTimeoutError (must be 0).`,
      'Each number is the median over the passes; requests/s range is the lowest and highest pass.',
    ],
    rows,
    targets,
  };
  const file = join(outDir, 'remote.json');
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`wrote ${relative(ROOT, file).startsWith('..') ? file : relative(ROOT, file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
