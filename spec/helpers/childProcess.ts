import { spawn } from 'node:child_process';
import path from 'node:path';

/** The library's source folder, for `require()` in child code. */
export const LIB = path.resolve(__dirname, '..', '..', 'lib');

/**
 * Runs `code` (CommonJS, TypeScript allowed) in a fresh Node process with tsx, so that an
 * uncaught exception or an unhandled rejection crashes that process, not the test runner.
 * Resolves with its exit code and everything it printed. Killed after `killAfterMs`.
 */
export async function runChild(code: string, killAfterMs = 20_000): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: path.resolve(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  return { code: exitCode, out, err };
}
