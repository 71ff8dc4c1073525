import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Runs the scale-out benchmark (`bench/remote/run.ts`, owned by the remote transport) when it
 * exists, passing `--quick` and `--out outDir` through, with its output shown as it goes
 * (stopped, with its process group, after 10 minutes; 3 in quick mode). Then returns what it
 * wrote to `outDir/remote.json` during this run, if anything.
 *
 * @example
 * ```ts
 * const remote = await runRemoteBench(repoRoot, { quick: false, outDir: join(repoRoot, 'bench', 'results'), since: Date.now() });
 * ```
 */
export async function runRemoteBench(
  repoRoot: string,
  options: { readonly quick: boolean; readonly outDir: string; readonly since: number },
): Promise<{ readonly status: string; readonly results?: unknown }> {
  const entry = join(repoRoot, 'bench', 'remote', 'run.ts');
  if (!existsSync(entry)) return { status: 'bench/remote/run.ts does not exist: skipped' };
  const tsx = require.resolve('tsx/cli', { paths: [repoRoot] });
  const limitMs = options.quick ? 180_000 : 600_000;
  let timedOut = false;
  const code = await new Promise<number | null>((resolve, reject) => {
    // Its own process group, so that on a timeout its brokers and workers stop with it.
    const child = spawn(process.execPath, [tsx, entry, ...(options.quick ? ['--quick'] : []), '--out', options.outDir], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    }, limitMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  if (timedOut) return { status: `bench/remote/run.ts did not finish within ${limitMs / 1000} s and was stopped` };
  const file = join(options.outDir, 'remote.json');
  const fresh = existsSync(file) && statSync(file).mtimeMs >= options.since;
  const shown = relative(repoRoot, file).startsWith('..') ? file : relative(repoRoot, file);
  const status = `bench/remote/run.ts exited with ${code}${fresh ? '' : `; it wrote no ${shown} in this run`}`;
  if (!fresh) return { status };
  try {
    return { status, results: JSON.parse(readFileSync(file, 'utf8')) as unknown };
  } catch (error) {
    return { status: `${status}; remote.json is not valid JSON (${String(error)})` };
  }
}

/**
 * Finds printable rows in the remote results: the first array of flat objects, at the top or
 * one level down. Every row gets every column any row has (null where it has none), in order of
 * first appearance, so a table built from the first row's columns shows them all.
 *
 * @example
 * ```ts
 * const rows = remoteRows({ rows: [{ transport: 'ws', 'requests/s': 9000 }] });
 * ```
 */
export function remoteRows(results: unknown): Array<Record<string, string | number | boolean | null>> | undefined {
  const isFlat = (x: unknown): x is Record<string, string | number | boolean | null> =>
    typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v));
  const asRows = (x: unknown): Array<Record<string, string | number | boolean | null>> | undefined =>
    Array.isArray(x) && x.length > 0 && x.every(isFlat) ? x : undefined;
  const withEveryColumn = (rows: Array<Record<string, string | number | boolean | null>>): Array<Record<string, string | number | boolean | null>> => {
    const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
    return rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c] ?? null])));
  };
  if (asRows(results) !== undefined) return withEveryColumn(asRows(results)!);
  if (typeof results === 'object' && results !== null) {
    for (const value of Object.values(results)) {
      const rows = asRows(value);
      if (rows !== undefined) return withEveryColumn(rows);
    }
  }
  return undefined;
}

/**
 * The goals `bench/remote/run.ts` judged (its `targets`: transport, target, measured, met) as
 * rows of the main Targets table, scenario `remote <transport>`; none when it wrote none.
 *
 * @example
 * ```ts
 * remoteTargets({ targets: [{ transport: 'redis', target: '…', measured: '0.93', met: 'yes' }] });
 * // [{ scenario: 'remote redis', target: '…', measured: '0.93', met: 'yes' }]
 * ```
 */
export function remoteTargets(results: unknown): Array<{ scenario: string; target: string; measured: string; met: 'yes' | 'no' | 'n/a' }> {
  const list = typeof results === 'object' && results !== null ? (results as { targets?: unknown }).targets : undefined;
  if (!Array.isArray(list)) return [];
  return list
    .filter((t): t is Record<string, unknown> => typeof t === 'object' && t !== null && typeof (t as Record<string, unknown>).target === 'string')
    .map((t) => ({
      scenario: `remote ${String(t.transport ?? '')}`.trim(),
      target: String(t.target),
      measured: String(t.measured ?? ''),
      met: t.met === 'yes' || t.met === 'no' ? t.met : 'n/a',
    }));
}
