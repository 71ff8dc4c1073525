import type { Row, Table } from './summarize';

/**
 * Renders rows as a GitHub-flavoured Markdown table (columns from the first row, in order);
 * numbers get thousands separators.
 *
 * @example
 * ```ts
 * markdownTable([{ implementation: 'rx-batcher', 'requests/s': 512000 }]);
 * // | implementation | requests/s |\n|---|---:|\n| rx-batcher | 512,000 |
 * ```
 */
export function markdownTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '_(no rows)_';
  const columns = Object.keys(rows[0]);
  const cell = (v: Row[string]): string => (typeof v === 'number' ? v.toLocaleString('en-US') : v === null ? '' : String(v).replace(/\|/g, '\\|'));
  const numeric = columns.map((c) => rows.every((r) => typeof r[c] === 'number' || /^[-–+]?[\d.,]+(%|×)?$/.test(String(r[c] ?? ''))));
  return [
    `| ${columns.join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n');
}

/**
 * Renders titled tables one after another.
 *
 * @example
 * ```ts
 * console.log(markdownTables(summary.tables));
 * ```
 */
export function markdownTables(tables: readonly Table[], headingLevel = 4): string {
  return tables.map((t) => `${'#'.repeat(headingLevel)} ${t.title}\n\n${markdownTable(t.rows)}`).join('\n\n');
}
