import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Pool } from 'undici';
import { frameToBinary, BINARY_TYPE } from '../../examples/http-server/codec';
import { INPUT_SAMPLES, STATE_SAMPLES, seededRandom } from '../../examples/models';
import { openLoop, uniformArrivals } from '../harness/openLoop';
import { now } from '../harness/process';
import { percentile } from '../harness/statistics';
import type { Metrics } from '../harness/tasks';
import type { ServerMessage, ServerProcessConfig } from './protocol';

/**
 * Scenario 8: what clients see of an HTTP model server offered more than it can serve.
 *
 * @example
 * ```ts
 * const options: HttpOverloadOptions = { server: 'recipe', ratePerSec: 6000, connections: 1500, durationMs: 5000, timeoutMs: 1000, repoRoot };
 * ```
 */
export interface HttpOverloadOptions extends ServerProcessConfig {
  /** Requests per second, issued open-loop (whether or not earlier ones were answered). */
  readonly ratePerSec: number;
  /** The undici `Pool`'s connections: requests beyond them wait in the client for one. */
  readonly connections: number;
  readonly durationMs: number;
  /** The server's deadline (also passed to it); a 200 slower than this, seen by the client, is late. */
  readonly timeoutMs: number;
  readonly repoRoot: string;
  /** A request not answered this long after the last one was issued counts as hanging. @default 60000 */
  readonly hangAfterMs?: number;
}

/**
 * Starts the server in a process of its own (`serverProcess.ts`), sends it `ratePerSec`
 * binary VAD frames a second for `durationMs` through one undici `Pool` of `connections`
 * connections, awaits every answer, then sends one more request and times it. Reports the
 * answers by status with their latency (from the moment the request was issued, so time spent
 * waiting for a free connection counts), requests that failed (reset, refused) or hung, 200s
 * slower than the deadline, the server's RSS before and during the load, its CPU time, and
 * the model's own time for one full batch.
 *
 * @example
 * ```ts
 * const m = await measureHttpOverload({ server: 'recipe', ratePerSec: 6000, connections: 1500, durationMs: 5000, timeoutMs: 1000, repoRoot });
 * console.log(m.p99Ms503, m.failed);
 * ```
 */
export async function measureHttpOverload(options: HttpOverloadOptions): Promise<Metrics> {
  const server = await startServerProcess(options);
  const pool = new Pool(server.url, { connections: options.connections });
  try {
    const random = seededRandom(7);
    const body = frameToBinary({
      samples: Float32Array.from({ length: INPUT_SAMPLES }, () => (random() * 2 - 1) * 0.3),
      state: Float32Array.from({ length: STATE_SAMPLES }, () => (random() * 2 - 1) * 0.5),
    });
    const send = async (): Promise<number> => {
      const response = await pool.request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body });
      await response.body.dump();
      return response.statusCode;
    };
    for (let i = 0; i < 20; i++) await send(); // warm: JIT, the model's first runs, a few connections

    const count = Math.round((options.ratePerSec * options.durationMs) / 1000);
    const arrivals = uniformArrivals(options.ratePerSec, count);
    const latencies = new Map<number, number[]>();
    const failures = new Map<string, number>();
    const lags = new Float64Array(count);
    let settled = 0;
    let allSettled!: () => void;
    const everyAnswer = new Promise<void>((resolve) => (allSettled = resolve));
    const rssBefore = server.rss.at(-1) ?? Number.NaN;
    server.rss.length = 0;
    let lastIssuedAt = 0;
    const start = await openLoop(
      arrivals,
      (i, startMs) => {
        const issuedAt = now();
        lastIssuedAt = issuedAt;
        lags[i] = issuedAt - startMs - arrivals[i];
        send().then(
          (status) => {
            const list = latencies.get(status) ?? [];
            list.push(now() - issuedAt);
            latencies.set(status, list);
          },
          (error: { code?: string; message?: string }) => failures.set(error.code ?? String(error.message), (failures.get(error.code ?? String(error.message)) ?? 0) + 1),
        ).finally(() => {
          if (++settled === count) allSettled();
        });
      },
      { maxPerTurn: 256 },
    );
    const issueSeconds = (lastIssuedAt - start) / 1000;
    const hangAfterMs = options.hangAfterMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([everyAnswer, new Promise<void>((resolve) => (timer = setTimeout(resolve, hangAfterMs)))]);
    clearTimeout(timer);
    const hung = count - settled;
    const drainSeconds = (now() - start) / 1000;
    const rssPeak = Math.max(...server.rss);

    const afterStart = now();
    const afterStatus = await send().catch(() => 0);
    const afterMs = now() - afterStart;
    const report = await server.report();

    const of = (status: number): number[] => latencies.get(status) ?? [];
    const answered = [...latencies.values()].reduce((sum, list) => sum + list.length, 0);
    const otherStatuses = [...latencies.keys()].filter((s) => s !== 200 && s !== 503 && s !== 504);
    const metrics: Metrics = {
      requests: count,
      issuedPerSec: count / issueSeconds,
      issueLagP99Ms: percentile(lags, 99),
      answered,
      failed: [...failures.values()].reduce((a, b) => a + b, 0),
      hung,
      drainSeconds,
      ok: of(200).length,
      overloaded: of(503).length,
      late: of(504).length,
      other: otherStatuses.reduce((sum, s) => sum + of(s).length, 0),
      late200: of(200).filter((ms) => ms > options.timeoutMs).length,
      afterStatus,
      afterMs,
      rssBeforeMb: rssBefore,
      rssPeakMb: rssPeak,
      serverPeakRssMb: report.peakRssMb,
      serverCpuSeconds: report.cpuMs / 1000,
      serverEventLoopUtilization: report.eventLoopUtilization,
      batchMs: server.batchMs,
      maxBatchSize: server.maxBatchSize,
      timeoutMs: options.timeoutMs,
      failures: [...failures].map(([code, n]) => `${code} ×${n}`).join(', '),
      otherStatuses: otherStatuses.map((s) => `${s} ×${of(s).length}`).join(', '),
    };
    for (const [status, name] of [[200, '200'], [503, '503'], [504, '504']] as const) {
      metrics[`p50Ms${name}`] = percentile(of(status), 50);
      metrics[`p99Ms${name}`] = percentile(of(status), 99);
      metrics[`maxMs${name}`] = percentile(of(status), 100);
    }
    for (const [key, value] of Object.entries(report.counters)) metrics[`server.${key}`] = value;
    return metrics;
  } finally {
    await pool.destroy().catch(() => undefined);
    await server.stop();
  }
}

interface ServerHandle {
  readonly url: string;
  readonly batchMs: number;
  readonly maxBatchSize: number;
  /** RSS samples (MB), every 100 ms. */
  readonly rss: number[];
  report(): Promise<Extract<ServerMessage, { type: 'report' }>>;
  stop(): Promise<void>;
}

function startServerProcess(options: HttpOverloadOptions): Promise<ServerHandle> {
  const config: ServerProcessConfig = { server: options.server, thread: options.thread, options: { ...options.options, timeoutMs: options.timeoutMs } };
  const child: ChildProcess = fork(join(options.repoRoot, 'bench', 'http', 'serverProcess.ts'), [JSON.stringify(config)], {
    cwd: options.repoRoot,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const rss: number[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const failed = (code: number | null) => reject(new Error(`the ${options.server} server process exited (${code}) before it was ready:\n${stderr.trim()}`));
    child.once('exit', failed);
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'rss') rss.push(message.mb);
      if (message.type !== 'ready') return;
      child.off('exit', failed);
      resolve({
        url: message.url,
        batchMs: message.batchMs,
        maxBatchSize: message.maxBatchSize,
        rss,
        report: () =>
          new Promise((resolveReport) => {
            const onReport = (m: ServerMessage) => {
              if (m.type !== 'report') return;
              child.off('message', onReport);
              resolveReport(m);
            };
            child.on('message', onReport);
            child.send('report');
          }),
        stop: async () => {
          if (child.exitCode === null) child.send('stop');
          const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}
