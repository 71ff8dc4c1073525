/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseBenchArgs } from '../../bench/runner/options';
import { runBenchmarks, type BenchRun } from '../../bench/runner/runBenchmarks';
import { runWorker } from '../../bench/runner/spawnWorker';
import { measureModelClosedLoop } from '../../bench/scenarios/realModels';

const repoRoot = resolve(__dirname, '..', '..');

interface Results {
  mode: string;
  machine: { cpus: number; node: string };
  tables: Array<{ id: string; rows: Array<Record<string, unknown>> }>;
  targets: Array<{ scenario: string; target: string; met: string }>;
  cases: Array<{ scenario: string; group: string; label: string; repetitions: number; errors: string[]; median: Record<string, number>; notes: Record<string, string> }>;
}

// `npm run bench -- --smoke`: every scenario's code at the smallest sizes, in this process, in
// a few seconds. No performance thresholds: the run completes, its tables, targets, JSON and
// SVG are well formed, and the correctness checks hold (batched model outputs equal unbatched
// ones; the soak settles every request exactly once). `npm run bench -- --quick` runs the same
// scenarios in worker processes. The onnx environment lets scenario 5 run onnxruntime-node in jest.
describe('npm run bench -- --smoke', () => {
  let outDir: string;
  let run: BenchRun;
  const progress: string[] = [];

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'rx-batcher-bench-smoke-'));
    run = await runBenchmarks(parseBenchArgs(['--smoke', '--out', outDir], repoRoot), repoRoot, (line) => progress.push(line));
    // A guard against a hang, not a speed limit: about 45 s on an idle 2-core machine, and over
    // 120 s at load 20.
  }, 360_000);

  afterAll(() => {
    rmSync(outDir, { recursive: true, force: true });
  });

  it('runs every case, shows progress and prints the comparison tables and targets', () => {
    expect(progress.some((line) => /^\[\s*1\/\d+ \d+m\d\ds\] s1-s2/.test(line))).toBe(true);
    for (const heading of ['Scenario 1', 'Scenario 2', 'Scenario 3', 'Scenario 4', 'Scenario 5', 'Scenario 6', 'Scenario 7', 'Scenario 8', 'Scenario 9', 'Targets']) {
      expect(run.summaryText).toContain(`#### ${heading}`);
    }
    expect(run.files).toEqual([join(outDir, 'smoke.json'), join(outDir, 'smoke.svg')]);
  });

  it('writes well-formed JSON results covering every scenario and implementation, with no failed measurement', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    expect(results.mode).toBe('smoke');
    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.versions.node);
    expect(results.tables.map((t) => t.id)).toEqual(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's7b', 's8', 's9']);
    expect(results.cases.filter((c) => c.errors.length > 0 || c.repetitions < 1)).toEqual([]);
    const overheadLabels = new Set(results.cases.filter((c) => c.scenario === 's1-s2').map((c) => c.label));
    expect([...overheadLabels].sort()).toEqual(['bare-batching', 'batshit', 'dataloader', 'promise-batcher', 'rx-batcher', 'rx-batcher/dataloader', 'rxjs-baseline', 'unbatched']);
    for (const row of results.tables.find((t) => t.id === 's1')!.rows) expect(row['requests/s']).toBeGreaterThan(0);
    expect(new Set(results.targets.map((t) => t.scenario))).toEqual(new Set(['1', '2', '3a', '3b', '4', '5', '6', '7', '8', '9']));
    for (const t of results.targets) expect(['yes', 'no', 'n/a']).toContain(t.met);
  });

  it('checks correctness, not speed: batched model outputs equal unbatched ones, the soak settles every request once', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    expect(results.targets.find((t) => t.target.startsWith('every batched output'))?.met).toBe('yes');
    for (const c of results.cases.filter((c) => c.scenario === 's5' && c.label !== 'model-direct')) expect(c.median.maxAbsDiff).toBeLessThan(1e-4);
    const soakCase = results.cases.find((c) => c.scenario === 's6')!;
    const soak = soakCase.median;
    expect({ settled: soak.settledTotal, twice: soak.settledTwice, never: soak.neverSettled, wrong: soakCase.notes.wrongOutcomes }).toEqual({
      settled: soak.requests,
      twice: 0,
      never: 0,
      wrong: '',
    });
    // The soak's mix really happened: some requests aborted, timed out and failed in their slot.
    expect(soak.aborted).toBeGreaterThan(0);
    expect(soak.timedOut + soak.answeredPastDeadline).toBeGreaterThan(0);
    expect(soak.failed).toBeGreaterThan(0);
  });

  it('scenario 7 compares latencyTarget with every fixed maxDelayMs at each load, and the slowdown run by halves', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    const s7 = results.cases.filter((c) => c.scenario === 's7');
    expect(new Set(s7.map((c) => c.label))).toEqual(new Set(['maxDelayMs 0', 'maxDelayMs 1', 'maxDelayMs 2', 'maxDelayMs 5', 'maxDelayMs 10', 'maxDelayMs 20', 'latencyTarget 20 ms', 'latencyTarget 30 ms']));
    for (const c of s7) expect(c.median.requests).toBeGreaterThan(0);
    const slowed = s7.find((c) => c.label === 'latencyTarget 30 ms')!;
    expect(slowed.median['second.requests']).toBeGreaterThan(0);
    expect(slowed.median.targetCuts).toBeGreaterThan(0); // its first batch at least: cut at once, to measure
    expect(results.tables.find((t) => t.id === 's7b')!.rows).toHaveLength(7);
  });

  it('scenario 8 offers HTTP load to the model server and the floor in processes of their own, and every request is answered', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    const http = results.cases.filter((c) => c.scenario === 's8');
    expect(http.map((c) => `${c.group.split(':')[0]} ${c.label}`)).toEqual(['overload recipe', 'overload recipe, door by queue only', 'overload recipe, model on a thread', 'overload floor', 'steady recipe', 'steady recipe, door by queue only', 'steady recipe, model on a thread']);
    for (const c of http) {
      // Counts, not speed: every request got an HTTP answer, none was reset or left hanging.
      expect({ answered: c.median.answered, failed: c.median.failed, hung: c.median.hung }).toEqual({ answered: c.median.requests, failed: 0, hung: 0 });
      expect(c.median.ok + c.median.overloaded + c.median.late + c.median.other).toBe(c.median.requests);
    }
    expect(http.find((c) => c.label === 'floor')!.median.overloaded).toBe(http.find((c) => c.label === 'floor')!.median.requests);
    for (const c of http.filter((c) => c.label !== 'floor')) expect(c.median.batchMs).toBeGreaterThan(0);
  });

  it('scenario 9 streams the same requests with continuous batching and whole-batch streaming, and every request gets all its chunks', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    const s9 = results.cases.filter((c) => c.scenario === 's9');
    expect(s9.map((c) => c.label)).toEqual(['continuous', 'whole-batch', 'continuous', 'whole-batch', 'continuous', 'whole-batch']);
    for (const c of s9) expect({ wrong: c.median.wrongChunkCounts, failed: c.median.failed }).toEqual({ wrong: 0, failed: 0 });
    for (const c of s9.filter((x) => x.group.includes('backlog'))) expect(c.median.chunksPerSec).toBeGreaterThan(0);
    for (const c of s9.filter((x) => x.group.includes('Poisson'))) expect(c.median.ttfcP50Ms).toBeGreaterThanOrEqual(0);
    // Only continuous batching lets requests join a running batch.
    expect(s9.filter((c) => c.label === 'whole-batch').every((c) => c.median.admittedBetweenSteps === 0)).toBe(true);
    expect(s9.filter((c) => c.label === 'continuous' && c.group.includes('backlog')).every((c) => c.median.admittedBetweenSteps > 0)).toBe(true);
    expect(results.targets.find((t) => t.target.startsWith('every streamed request'))?.met).toBe('yes');
  });

  it('scenario 5 runs rx-batcher with its default slot and with two, beside DataLoader and the unbatched floor', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'smoke.json'), 'utf8')) as Results;
    for (const group of ['silero burst', 'silero closed loop', 'mlp burst', 'mlp closed loop']) {
      const labels = results.cases.filter((c) => c.scenario === 's5' && c.group === group).map((c) => c.label);
      expect(labels).toEqual(['rx-batcher', 'rx-batcher, 2 slots', 'dataloader', 'unbatched']);
    }
  });

  it('scenario 5 pairs a closed loop too small to fill a batch with the model alone at the batch it can form', async () => {
    // 4 clients, maxBatchSize 16: batches of at most 4, so the model alone is also measured at 4.
    const small = await measureModelClosedLoop('mlp', 'rx-batcher', 4, 30, { maxBatchSize: 16, maxDelayMs: 0 }, repoRoot, 5, 1);
    expect(small.meanBatchSize).toBeLessThanOrEqual(4);
    expect({ formed: small.formedBatchSize, efficiency: Number.isFinite(small.pairedFormedEfficiency), direct: Number.isFinite(small.pairedFormedDirectPerSec) }).toEqual({
      formed: 4,
      efficiency: true,
      direct: true,
    });
    // Clients enough to fill a batch: its best size is the batch formed, nothing more to measure.
    const full = await measureModelClosedLoop('mlp', 'rx-batcher', 16, 30, { maxBatchSize: 16, maxDelayMs: 0 }, repoRoot, 5, 1);
    expect(full.pairedFormedEfficiency).toBeUndefined();
    expect(Number.isFinite(full.pairedEfficiency)).toBe(true);
  }, 60_000);

  it('writes a standalone SVG chart', () => {
    const svg = readFileSync(join(outDir, 'smoke.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('Scenario 1');
    expect(svg).toContain('Scenario 5');
    expect(svg).toContain('SMOKE MODE');
    expect(svg).not.toMatch(/NaN/);
  });
});

// Full and quick runs measure each case in a fresh process: the worker protocol (task as JSON
// in, one `RESULT {json}` line out, stderr on failure), here on bench/worker.ts through tsx
// instead of the tsc build.
describe('bench worker process', () => {
  const tsxFlags = { cwd: repoRoot, nodeFlags: ['--import', 'tsx'], timeoutMs: 30_000 };
  const worker = join(repoRoot, 'bench', 'worker.ts');

  it('reports its metrics on one RESULT line, and fails with its stderr on a bad task', async () => {
    const [metrics, failure] = await Promise.all([
      runWorker(worker, { kind: 'throughput', impl: 'rx-batcher', n: 100, rules: { maxBatchSize: 64, maxDelayMs: 0 }, warmup: 100, rounds: 1 }, tsxFlags),
      runWorker(worker, { kind: 'no-such-task' } as never, tsxFlags).then(
        () => 'resolved',
        (error: Error) => error.message,
      ),
    ]);
    expect(metrics.requestsPerSec).toBeGreaterThan(0);
    expect(metrics.rounds).toBe(1);
    expect(failure).toMatch(/failed \(exit 1\)[\s\S]*unknown task kind/);
  }, 30_000);
});
