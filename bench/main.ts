/**
 * `npm run bench` (`-- --quick` for a small run, `-- --smoke` to check the code in seconds):
 * compiles the benchmark, runs every scenario of issue 3 in fresh Node processes with
 * interleaved repetitions, prints the comparison tables and the targets, and writes
 * `latest.json` + `latest.svg` to `bench/results/` (`quick.*` / `smoke.*` to `.cache/bench/…`).
 * `-- --node 20,24` repeats the run on each Node version (`-- --headline --node 20,24`: scenario 1
 * alone) and prints rx-batcher ÷ DataLoader per version.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runAcrossNodes } from './runner/acrossNodes';
import { runBenchmarks } from './runner/runBenchmarks';
import { parseBenchArgs, USAGE } from './runner/options';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const repoRoot = resolve(__dirname, '..');
  const options = parseBenchArgs(argv, repoRoot);
  try {
    const progress = (line: string): void => console.log(line);
    const { summaryText, files } = options.nodes.length > 0 ? await runAcrossNodes(options, repoRoot, progress) : await runBenchmarks(options, repoRoot, progress);
    console.log(`\n${summaryText}\n`);
    console.log(`Results: ${files.map((f) => f.replace(`${repoRoot}/`, '')).join(', ')}`);
  } finally {
    if (options.buildDir.startsWith(join(repoRoot, '.cache', 'bench', 'build-'))) rmSync(options.buildDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
