import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Compiles `lib/`, `bench/` (without `bench/remote/`) and `examples/models/` to plain
 * CommonJS in `outDir` (inside the repository, so `node_modules` resolves), with tsc's
 * `--noCheck`: type-checking is `npm test`'s job; here only the emitted JavaScript matters.
 * Workers then run on `node` alone, with no loader in the measured process.
 *
 * @example
 * ```ts
 * const workerPath = compileBench(repoRoot, join(repoRoot, '.cache', 'bench', 'build'));
 * ```
 */
export function compileBench(repoRoot: string, outDir: string): string {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [repoRoot] });
  const result = spawnSync(process.execPath, [tsc, '-p', join(repoRoot, 'bench', 'tsconfig.json'), '--outDir', outDir, '--noCheck'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(`compiling the benchmark failed (tsc exit ${result.status}):\n${result.stdout}${result.stderr}\nFix the errors above, or run \`npx tsc -p bench/tsconfig.json --noEmit\` to see them.`);
  }
  return join(outDir, 'bench', 'worker.js');
}
