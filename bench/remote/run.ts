// Scale-out benchmark (npm run bench:remote [-- --quick] [-- --out DIR]): what a broker costs
// per request, and how one and two worker processes batch a simulated model, on Redis Streams
// and NATS JetStream, against the in-process Batcher. Starts private brokers (temp folder, unix
// socket or free port), one process per worker, stops everything by PID; writes remote.json to
// bench/results/ (a full run: the committed results) or .cache/bench/quick/ (--quick), or DIR.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Batcher } from '../../lib';
import { natsTransport } from '../../lib/nats';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, type BatchTransport, type WorkerStats } from '../../lib/remote';
import { startNats, startRedis, type TestBroker } from '../../spec/remote/brokers';
import { benchModel, type BenchModelKind } from './model';

const ROOT = resolve(__dirname, '../..');
const quick = process.argv.includes('--quick');
const outArg = process.argv.indexOf('--out');
if (outArg !== -1 && process.argv[outArg + 1] === undefined) throw new TypeError('--out needs a folder');
const outDir =
  outArg !== -1 ? (isAbsolute(process.argv[outArg + 1]) ? process.argv[outArg + 1] : resolve(process.argv[outArg + 1])) : quick ? join(ROOT, '.cache', 'bench', 'quick') : join(ROOT, 'bench', 'results');
const plan = quick
  ? { idleRequests: 200, warmupMs: 200, measureMs: 700, concurrency: 64, runs: 1 }
  : { idleRequests: 2000, warmupMs: 1000, measureMs: 4000, concurrency: 64, runs: 3 };

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

/** `concurrency` callers in closed loops; counts and times only what finishes inside the measuring window. */
async function closedLoop(run: Run, hooks: { atStart(): Promise<void>; atEnd(): Promise<void> }): Promise<{ perSecond: number; p50: number; p99: number; done: number }> {
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

interface WorkerProcess {
  child: ChildProcess;
  report(): Promise<{ cpuMicros: number; stats: WorkerStats }>;
  stop(): Promise<void>;
}

async function startWorker(kind: 'redis' | 'nats', url: string, subject: string, model: BenchModelKind, maxDelayMs: number): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'worker.ts')], {
    cwd: ROOT,
    env: { ...process.env, RXB_TRANSPORT: kind, RXB_URL: url, RXB_SUBJECT: subject, RXB_MODEL: model, RXB_MAX_BATCH: '64', RXB_MAX_DELAY_MS: String(maxDelayMs) },
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
        child.once('message', (m: { cpuMicros: number; stats: WorkerStats }) => r(m));
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
  const rows: Row[] = [];
  const trivial = new Batcher<number, number>({ runBatch: benchModel('trivial'), maxBatchSize: 64 });
  const i = await idle((x) => trivial.run(x), plan.idleRequests);
  rows.push({ transport: 'in-process', scenario: 'idle round trip', workers: 1, 'requests/s': round(i.perSecond, 0), 'p50 ms': round(i.p50, 3), 'p99 ms': round(i.p99, 3), 'mean batch': 1, 'CPU µs/request': null });
  let cpu0 = 0;
  const load = await closedLoop((x) => trivial.run(x), { atStart: async () => void (cpu0 = ownCpuMicros()), atEnd: async () => undefined });
  const loadCpu = ownCpuMicros() - cpu0;
  rows.push({ transport: 'in-process', scenario: 'trivial, 64 callers', workers: 1, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 3), 'p99 ms': round(load.p99, 3), 'mean batch': round(trivial.stats().meanBatchSize, 1), 'CPU µs/request': round(loadCpu / load.done, 1) });
  await trivial.stop();
  const sim = new Batcher<number, number>({ runBatch: benchModel('sim'), maxBatchSize: 64, maxDelayMs: 2 });
  const s = await closedLoop((x) => sim.run(x), { atStart: async () => undefined, atEnd: async () => undefined });
  rows.push({ transport: 'in-process', scenario: 'sim model, 64 callers', workers: 1, 'requests/s': round(s.perSecond, 0), 'p50 ms': round(s.p50, 2), 'p99 ms': round(s.p99, 2), 'mean batch': round(sim.stats().meanBatchSize, 1), 'CPU µs/request': null });
  await sim.stop();
  return rows;
}

async function brokerRows(kind: 'redis' | 'nats', broker: TestBroker, transport: () => BatchTransport): Promise<Row[]> {
  const rows: Row[] = [];
  let subjects = 0;
  const subject = (): string => `bench-${Date.now().toString(36)}-${++subjects}`;

  // Idle round trip and CPU per request: one worker process, trivial model.
  {
    const s = subject();
    const worker = await startWorker(kind, broker.url, s, 'trivial', 0);
    const producer = remoteBatcher<number, number>(transport(), s, { timeoutMs: 30_000 });
    try {
      const i = await idle((x) => producer.run(x), plan.idleRequests);
      rows.push({ transport: kind, scenario: 'idle round trip', workers: 1, 'requests/s': round(i.perSecond, 0), 'p50 ms': round(i.p50, 3), 'p99 ms': round(i.p99, 3), 'mean batch': 1, 'CPU µs/request': null });
      let start = { own: 0, worker: 0, broker: 0 };
      const read = async () => ({ own: ownCpuMicros(), worker: (await worker.report()).cpuMicros, broker: brokerCpuMicros(broker.pid()) });
      let end = start;
      const load = await closedLoop((x) => producer.run(x), { atStart: async () => void (start = await read()), atEnd: async () => void (end = await read()) });
      const per = (k: keyof typeof start): number => (end[k] - start[k]) / load.done;
      const stats = (await worker.report()).stats;
      rows.push({
        transport: kind, scenario: 'trivial, 64 callers', workers: 1, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 2), 'p99 ms': round(load.p99, 2),
        'mean batch': round(stats.meanBatchSize, 1), 'CPU µs/request': round(per('own') + per('worker') + per('broker'), 1),
        'CPU producer µs': round(per('own'), 1), 'CPU worker µs': round(per('worker'), 1), 'CPU broker µs': round(per('broker'), 1),
      });
    } finally {
      await producer.stop();
      await worker.stop();
    }
  }

  // Throughput and batch size on the simulated model: one, then two worker processes.
  for (const count of [1, 2]) {
    const s = subject();
    const workers = await Promise.all(Array.from({ length: count }, () => startWorker(kind, broker.url, s, 'sim', 2)));
    const producer = remoteBatcher<number, number>(transport(), s, { timeoutMs: 30_000 });
    try {
      const load = await closedLoop((x) => producer.run(x), { atStart: async () => undefined, atEnd: async () => undefined });
      const stats = await Promise.all(workers.map((w) => w.report()));
      const batches = stats.reduce((a, r) => a + r.stats.batches, 0);
      const pulled = stats.reduce((a, r) => a + r.stats.pulled, 0);
      rows.push({ transport: kind, scenario: 'sim model, 64 callers', workers: count, 'requests/s': round(load.perSecond, 0), 'p50 ms': round(load.p50, 2), 'p99 ms': round(load.p99, 2), 'mean batch': round(pulled / batches, 1), 'CPU µs/request': null });
    } finally {
      await producer.stop();
      await Promise.all(workers.map((w) => w.stop()));
    }
  }
  return rows;
}

/** One pass over every scenario, each broker started fresh. */
async function onePass(): Promise<Row[]> {
  const rows: Row[] = await inProcessRows();
  const redis = await startRedis();
  try {
    rows.push(...(await brokerRows('redis', redis, () => redisTransport({ url: redis.url }))));
  } finally {
    await redis.stop();
  }
  const nats = await startNats();
  try {
    rows.push(...(await brokerRows('nats', nats, () => natsTransport({ servers: nats.url }))));
  } finally {
    await nats.stop();
  }
  return rows;
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
    for (const [column, value] of Object.entries(first)) {
      if (typeof value === 'number' && column !== 'workers') row[column] = median(same.map((r) => r[column] as number));
    }
    const rates = same.map((r) => r['requests/s']);
    row['requests/s range'] = `${Math.min(...rates)}–${Math.max(...rates)}`;
    return row;
  });
}

async function main(): Promise<void> {
  console.log(
    `scale-out benchmark${quick ? ' (quick)' : ''}: ${plan.concurrency} closed-loop callers, batch 64, ` +
      `${plan.measureMs} ms windows after ${plan.warmupMs} ms warm-up, median of ${plan.runs} pass(es)`,
  );
  const passes: Row[][] = [];
  for (let pass = 1; pass <= plan.runs; pass++) {
    passes.push(await onePass());
    if (plan.runs > 1) console.log(`pass ${pass}/${plan.runs} done`);
  }
  const rows = medianRows(passes);
  console.table(rows);
  mkdirSync(outDir, { recursive: true });
  const results = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    passes: plan.runs,
    machine: { cpus: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    notes: [
      'Brokers, producer and worker processes share this machine: the numbers measure per-request overhead, not scale-out.',
      'sim model: one call at a time, 5 ms + 0.05 ms per item; workers use maxDelayMs 2. trivial: 2x+1 at once.',
      'CPU µs/request: producer + worker + broker CPU time during the measuring window, divided by requests answered in it.',
      'Each number is the median over the passes; requests/s range is the lowest and highest pass.',
    ],
    rows,
  };
  const file = join(outDir, 'remote.json');
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`wrote ${relative(ROOT, file).startsWith('..') ? file : relative(ROOT, file)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
