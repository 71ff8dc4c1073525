/**
 * Build-time data loader for the benchmark results in `bench/results/`: the latest JSON
 * results as a table and the newest SVG chart. Both are optional: when the folder or a file is
 * missing, the pages that use it say so instead of breaking the build.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the Home and Benchmarks pages receive. */
export interface BenchData {
  /** Column names and rows of the latest results, or `null` when there are none. */
  table: { columns: string[]; rows: string[][] } | null;
  /** Top-level scalar facts of the results file (machine, date, …). */
  facts: [string, string][];
  /** The newest chart as a `data:` URI (so it is inlined in the build), and its file name. */
  chart: { src: string; file: string } | null;
}

export declare const data: BenchData;

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'results');

export default {
  watch: ['../bench/results/*.json', '../bench/results/*.svg'],
  load(): BenchData {
    return { ...readResults(join(resultsDir, 'latest.json')), chart: newestChart() };
  },
};

function readResults(file: string): Pick<BenchData, 'table' | 'facts'> {
  if (!existsSync(file)) return { table: null, facts: [] };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return { table: null, facts: [['note', 'bench/results/latest.json is not valid JSON']] };
  }
  const facts: [string, string][] = [];
  let rows: Record<string, unknown>[] | undefined;
  if (Array.isArray(json)) rows = json.filter(isRecord);
  else if (isRecord(json)) {
    for (const [key, value] of Object.entries(json)) {
      if (rows === undefined && Array.isArray(value) && value.length > 0 && value.every(isRecord)) rows = value;
      else if (isScalar(value)) facts.push([key, String(value)]);
      else if (isRecord(value) && Object.values(value).every(isScalar)) {
        facts.push([key, Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(', ')]);
      }
    }
  }
  if (rows === undefined || rows.length === 0) return { table: null, facts };
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row).filter((k) => isScalar(row[k]))))];
  return { table: { columns, rows: rows.map((row) => columns.map((c) => format(row[c]))) }, facts };
}

function newestChart(): BenchData['chart'] {
  if (!existsSync(resultsDir)) return null;
  const svgs = readdirSync(resultsDir)
    .filter((name) => name.endsWith('.svg'))
    .map((name) => ({ name, mtime: statSync(join(resultsDir, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime || a.name.localeCompare(b.name));
  if (svgs.length === 0) return null;
  const svg = readFileSync(join(resultsDir, svgs[0].name));
  return { src: `data:image/svg+xml;base64,${svg.toString('base64')}`, file: svgs[0].name };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): value is string | number | boolean | null {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function format(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(value < 10 ? 2 : 1);
  return value === undefined || value === null ? '' : String(value);
}
