/**
 * Reads the benchmark results in `bench/results/` for the docs site: `latest.json` as tables
 * and facts, `latest.svg` as an inlined chart. Every part is optional, so a missing or odd
 * file never breaks the docs build.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One table of results, ready to render. */
export interface BenchTable {
  readonly title: string;
  readonly columns: string[];
  readonly rows: string[][];
}

/** What the Home and Benchmarks pages receive. */
export interface BenchData {
  /** The tables of `latest.json`: its titled `tables`, then any other array of flat rows. */
  readonly tables: BenchTable[];
  /** Top-level scalar facts of the results file (title, date, machine, …). */
  readonly facts: [string, string][];
  /** `latest.svg` as a `data:` URI, so the built site carries it inline. */
  readonly chart: { readonly src: string; readonly file: string } | null;
}

type Row = Record<string, unknown>;

/**
 * Reads `latest.json` and `latest.svg` from `dir`.
 *
 * @example
 * ```ts
 * const { tables, chart } = readBenchResults('bench/results');
 * ```
 */
export function readBenchResults(dir: string): BenchData {
  const svg = join(dir, 'latest.svg');
  const chart = existsSync(svg) ? { src: `data:image/svg+xml;base64,${readFileSync(svg).toString('base64')}`, file: 'latest.svg' } : null;
  const json = join(dir, 'latest.json');
  if (!existsSync(json)) return { tables: [], facts: [], chart };
  let results: unknown;
  try {
    results = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    return { tables: [], facts: [['note', 'bench/results/latest.json is not valid JSON']], chart };
  }
  return { ...tablesAndFacts(results), chart };
}

function tablesAndFacts(results: unknown): Pick<BenchData, 'tables' | 'facts'> {
  if (Array.isArray(results)) return { tables: isRowArray(results) ? [toTable('Results', results)] : [], facts: [] };
  if (!isRecord(results)) return { tables: [], facts: [] };
  const titled: BenchTable[] = [];
  const others: BenchTable[] = [];
  const facts: [string, string][] = [];
  for (const [key, value] of Object.entries(results)) {
    if (isScalar(value)) facts.push([key, String(value)]);
    else if (isRecord(value) && Object.values(value).every(isScalar)) {
      facts.push([key, Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(', ')]);
    } else if (isRowArray(value)) others.push(toTable(capitalize(key), value));
    else if (Array.isArray(value) && value.length > 0 && value.every(isTitledTable)) {
      for (const t of value) titled.push(toTable(t.title, t.rows));
    }
  }
  return { tables: [...titled, ...others], facts };
}

function toTable(title: string, rows: readonly Row[]): BenchTable {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row).filter((k) => isScalar(row[k]))))];
  return { title, columns, rows: rows.map((row) => columns.map((c) => format(row[c]))) };
}

function isTitledTable(value: unknown): value is { title: string; rows: Row[] } {
  return isRecord(value) && typeof value.title === 'string' && isRowArray(value.rows);
}

function isRowArray(value: unknown): value is Row[] {
  return Array.isArray(value) && value.length > 0 && value.every((row) => isRecord(row) && Object.values(row).every(isScalar));
}

function isRecord(value: unknown): value is Row {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isScalar(value: unknown): value is string | number | boolean | null {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

function capitalize(key: string): string {
  return key.charAt(0).toUpperCase() + key.slice(1).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

function format(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) < 10 ? 2 : 1 });
  }
  return value === undefined || value === null ? '' : String(value);
}
