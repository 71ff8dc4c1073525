import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

/**
 * One function's share of the samples in which it was on top of the stack.
 *
 * @example
 * ```ts
 * const hot: SelfTime = { fn: 'submit lib/core/batchEngine.js:105', percent: 3.4 };
 * ```
 */
export interface SelfTime {
  readonly fn: string;
  readonly percent: number;
}

/**
 * The functions with the most self time in a `.cpuprofile` written by `node --cpu-prof`,
 * named `function file:line` with paths shortened to `lib/…`, `bench/…` or the package.
 *
 * @example
 * ```ts
 * for (const { fn, percent } of topSelfTime('CPU.20261128.cpuprofile', 15)) console.log(percent.toFixed(1), fn);
 * ```
 */
export function topSelfTime(file: string, count: number): SelfTime[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    const where = frame.url
      .replace(/^file:\/\//, '')
      .replace(/^.*\/node_modules\//, '')
      .replace(/^.*\/\.cache\/bench\/build-[^/]+\//, '');
    const key = `${frame.functionName || '(anonymous)'} ${where}${where ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + (hits.get(node.id) ?? 0));
  }
  const total = profile.samples.length || 1;
  return [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, samples]) => ({ fn, percent: (100 * samples) / total }));
}
