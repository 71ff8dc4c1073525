/**
 * Reads the benchmark results in `bench/results/` for the docs site: `latest.json` as tables
 * and facts, `latest.svg` as an inlined chart. Every part is optional, so a missing or odd
 * file never breaks the docs build.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** One table of results, ready to render. */
export interface BenchTable {
  readonly title: string;
  readonly columns: string[];
  readonly rows: string[][];
}

/** Another results file of `bench/results/` (e.g. `remote.json`), shown after the main results. */
export interface BenchSection {
  /** The file's `title`, or its name. */
  readonly title: string;
  readonly file: string;
  readonly tables: BenchTable[];
  readonly facts: [string, string][];
  /** Its `notes`, when it has an array of strings by that name. */
  readonly notes: string[];
}

/** What the Home and Benchmarks pages receive. */
export interface BenchData {
  /** The tables of `latest.json`: its titled `tables`, then any other array of flat rows. */
  readonly tables: BenchTable[];
  /** Top-level scalar facts of the results file (title, date, machine, …). */
  readonly facts: [string, string][];
  /** `latest.svg` as a `data:` URI, so the built site carries it inline. */
  readonly chart: { readonly src: string; readonly file: string } | null;
  /** The other `*.json` results files (not `latest.json` or the smoke-test `quick.json`). */
  readonly sections: BenchSection[];
}

type Row = Record<string, unknown>;

/** Titles for results files that carry none of their own. */
const KNOWN_TITLES: Record<string, string> = {
  'remote.json': 'Across processes: Redis Streams and NATS (bench:remote)',
};

/**
 * Reads `latest.json` and `latest.svg` from `dir`, and every other results file there as a
 * section of its own.
 *
 * @example
 * ```ts
 * const { tables, chart } = readBenchResults('bench/results');
 * ```
 */
export function readBenchResults(dir: string): BenchData {
  const svg = join(dir, 'latest.svg');
  const chart = existsSync(svg) ? { src: `data:image/svg+xml;base64,${readFileSync(svg).toString('base64')}`, file: 'latest.svg' } : null;
  const latest = readJson(join(dir, 'latest.json'));
  const main = latest.ok ? tablesAndFacts(latest.value) : { tables: [], facts: latest.note === undefined ? [] : [['note', latest.note] as [string, string]] };
  return { ...main, chart, sections: otherSections(dir) };
}

function otherSections(dir: string): BenchSection[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'latest.json' && f !== 'quick.json').sort();
  const sections: BenchSection[] = [];
  for (const file of files) {
    const json = readJson(join(dir, file));
    if (!json.ok) continue;
    const { tables, facts } = tablesAndFacts(json.value);
    if (tables.length === 0) continue;
    const record = isRecord(json.value) ? json.value : {};
    const notes = Array.isArray(record.notes) ? record.notes.filter((n): n is string => typeof n === 'string') : [];
    const title = typeof record.title === 'string' ? record.title : (KNOWN_TITLES[file] ?? file);
    sections.push({ title, file, tables, facts: facts.filter(([k]) => k !== 'title'), notes });
  }
  return sections;
}

function readJson(file: string): { ok: true; value: unknown } | { ok: false; note?: string } {
  if (!existsSync(file)) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(readFileSync(file, 'utf8')) };
  } catch {
    return { ok: false, note: `bench/results/${basename(file)} is not valid JSON` };
  }
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
