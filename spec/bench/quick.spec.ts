import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repoRoot = resolve(__dirname, '..', '..');
const committedResults = join(repoRoot, 'bench', 'results', 'latest.json');

interface QuickRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

// `npm run bench -- --quick` for real: tsc compile, one fresh node process per measurement,
// every scenario small. No performance thresholds: only that it completes and writes
// well-formed results, to a temporary folder, leaving bench/results/ alone.
describe('npm run bench -- --quick', () => {
  let outDir: string;
  let run: QuickRun;
  let committedMtime: number | undefined;

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'rx-batcher-bench-'));
    committedMtime = existsSync(committedResults) ? statSync(committedResults).mtimeMs : undefined;
    run = await new Promise<QuickRun>((done, fail) => {
      const tsx = require.resolve('tsx/cli', { paths: [repoRoot] });
      const child = spawn(process.execPath, [tsx, join(repoRoot, 'bench', 'main.ts'), '--quick', '--out', outDir, '--skip-remote'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }, 170_000);

  afterAll(() => {
    rmSync(outDir, { recursive: true, force: true });
  });

  it('completes, shows progress and prints the comparison tables and targets', () => {
    expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/\[\s*1\/\d+ \d+m\d\ds\] s1-s2/);
    for (const heading of ['Scenario 1', 'Scenario 2', 'Scenario 3', 'Scenario 4', 'Scenario 5', 'Scenario 6', 'Targets']) {
      expect(run.stdout).toContain(`#### ${heading}`);
    }
  });

  it('writes well-formed JSON results covering every scenario and implementation, with no failed measurement', () => {
    const results = JSON.parse(readFileSync(join(outDir, 'quick.json'), 'utf8')) as {
      mode: string;
      machine: { cpus: number; node: string };
      tables: Array<{ id: string; rows: Array<Record<string, unknown>> }>;
      targets: Array<{ scenario: string; target: string; met: string }>;
      cases: Array<{ scenario: string; label: string; repetitions: number; errors: string[]; median: Record<string, number>; notes: Record<string, string> }>;
    };
    expect(results.mode).toBe('quick');
    expect(results.machine.cpus).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.versions.node);
    expect(results.tables.map((t) => t.id)).toEqual(['s1', 's2', 's3', 's4', 's5', 's6']);
    expect(results.cases.filter((c) => c.errors.length > 0 || c.repetitions < 1)).toEqual([]);
    const overheadLabels = new Set(results.cases.filter((c) => c.scenario === 's1-s2').map((c) => c.label));
    expect([...overheadLabels].sort()).toEqual(['batshit', 'dataloader', 'promise-batcher', 'rx-batcher', 'rxjs-baseline', 'unbatched']);
    for (const row of results.tables.find((t) => t.id === 's1')!.rows) expect(row['requests/s']).toBeGreaterThan(0);
    expect(new Set(results.targets.map((t) => t.scenario))).toEqual(new Set(['1', '2', '3a', '3b', '4', '5', '6']));
    for (const t of results.targets) expect(['yes', 'no', 'n/a']).toContain(t.met);
    // Correctness, not performance: batched model outputs equal unbatched ones, and the soak
    // settles every request exactly once.
    expect(results.targets.find((t) => t.target.startsWith('every batched output'))?.met).toBe('yes');
    const soakCase = results.cases.find((c) => c.scenario === 's6')!;
    const soak = soakCase.median;
    expect({ settled: soak.settledTotal, twice: soak.settledTwice, never: soak.neverSettled, wrong: soakCase.notes.wrongOutcomes }).toEqual({
      settled: soak.requests,
      twice: 0,
      never: 0,
      wrong: '',
    });
  });

  it('writes a standalone SVG chart and leaves bench/results/latest.json untouched', () => {
    const svg = readFileSync(join(outDir, 'quick.svg'), 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('Scenario 1');
    expect(svg).toContain('Scenario 5');
    expect(svg).not.toMatch(/NaN/);
    expect(existsSync(committedResults) ? statSync(committedResults).mtimeMs : undefined).toBe(committedMtime);
  });
});
