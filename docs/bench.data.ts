/**
 * Build-time data loader: the benchmark results in `bench/results/` (see
 * `.vitepress/benchResults.ts`). When they are missing, the pages say so and the build goes on.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBenchResults, type BenchData } from './.vitepress/benchResults';

export declare const data: BenchData;

// BENCH_RESULTS_DIR lets you preview the page with results from elsewhere.
const resultsDir = process.env.BENCH_RESULTS_DIR ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'results');

export default {
  watch: ['../bench/results/latest.json', '../bench/results/latest.svg'],
  load: (): BenchData => readBenchResults(resultsDir),
};
