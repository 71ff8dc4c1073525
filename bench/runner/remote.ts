import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs the scale-out benchmark (`bench/remote/run.ts`, owned by the remote transport) when it
 * exists, passing `--quick` through, with its output shown as it goes. Then returns what it
 * wrote to `bench/results/remote.json` during this run, or `undefined`.
 *
 * @example
 * ```ts
 * const remote = await runRemoteBench(repoRoot, { quick: false, since: Date.now() });
 * ```
 */
export async function runRemoteBench(repoRoot: string, options: { readonly quick: boolean; readonly since: number }): Promise<{ readonly status: string; readonly results?: unknown }> {
  const entry = join(repoRoot, 'bench', 'remote', 'run.ts');
  if (!existsSync(entry)) return { status: 'bench/remote/run.ts does not exist: skipped' };
  const tsx = require.resolve('tsx/cli', { paths: [repoRoot] });
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [tsx, entry, ...(options.quick ? ['--quick'] : [])], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve(exitCode));
  });
  const file = join(repoRoot, 'bench', 'results', 'remote.json');
  const fresh = existsSync(file) && statSync(file).mtimeMs >= options.since;
  const status = `bench/remote/run.ts exited with ${code}${fresh ? '' : '; it wrote no bench/results/remote.json in this run'}`;
  if (!fresh) return { status };
  try {
    return { status, results: JSON.parse(readFileSync(file, 'utf8')) as unknown };
  } catch (error) {
    return { status: `${status}; remote.json is not valid JSON (${String(error)})` };
  }
}

/**
 * Finds printable rows in the remote results: the first array of flat objects, at the top or
 * one level down.
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
  if (asRows(results) !== undefined) return asRows(results);
  if (typeof results === 'object' && results !== null) {
    for (const value of Object.values(results)) {
      const rows = asRows(value);
      if (rows !== undefined) return rows;
    }
  }
  return undefined;
}
