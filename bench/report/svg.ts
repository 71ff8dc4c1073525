import type { Aggregate } from './aggregate';

const WIDTH = 1000;
const LABEL_W = 250;
const BAR_W = 460;
const BAR_H = 16;
const GAP = 5;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"';

const COLORS: Record<string, string> = {
  'rx-batcher': '#e4572e',
  'rx-batcher (maxConcurrentBatches ∞)': '#f58518',
  dataloader: '#4c78a8',
  'promise-batcher': '#72b7b2',
  batshit: '#b279a2',
  'rxjs-baseline': '#9d755d',
  unbatched: '#bab0ac',
  'model-direct': '#54a24b',
};

interface Bar {
  readonly label: string;
  readonly value: number;
  readonly text: string;
}

interface BarGroup {
  readonly title?: string;
  readonly bars: readonly Bar[];
}

/**
 * Draws the run's main comparisons as one standalone SVG (no chart library): requests/s
 * (scenario 1), per-request cost against n (2), saturation throughput (3), p99 wait (4) and
 * efficiency against the model's best (5).
 *
 * @example
 * ```ts
 * writeFileSync('latest.svg', renderChart(aggregates, { title: 'rx-batcher benchmarks', subtitle: '2 cores, Node 20' }));
 * ```
 */
export function renderChart(aggregates: readonly Aggregate[], meta: { readonly title: string; readonly subtitle: string; readonly headlineCalls: number }): string {
  const parts: string[] = [];
  let y = 20;
  parts.push(text(16, y + 8, meta.title, 18, 'bold'));
  parts.push(text(16, y + 28, meta.subtitle, 12, 'normal', '#555'));
  y += 50;
  const v = (a: Aggregate | undefined, key: string): number => a?.median[key] ?? Number.NaN;
  const of = (scenario: string, group: string): Aggregate[] => aggregates.filter((a) => a.scenario === scenario && a.group === group);

  const s1 = of('s1-s2', `n=${meta.headlineCalls}`);
  if (s1.length > 0) {
    const dl = v(s1.find((a) => a.label === 'dataloader'), 'requestsPerSec');
    y = barPanel(parts, y, `Scenario 1 — requests/s, ${meta.headlineCalls.toLocaleString('en-US')} concurrent calls, trivial model (higher is better)`, [
      { bars: s1.map((a) => ({ label: a.label, value: v(a, 'requestsPerSec'), text: `${kilo(v(a, 'requestsPerSec'))}/s  (${(v(a, 'requestsPerSec') / dl).toFixed(2)}× DataLoader)` })) },
    ]);
  }

  const s2 = aggregates.filter((a) => a.scenario === 's1-s2' && a.group.startsWith('n='));
  if (s2.length > 0) y = linePanel(parts, y, 'Scenario 2 — ns per request against concurrent calls (flat is good, lower is better)', s2);

  const s3 = aggregates.filter((a) => a.scenario === 's3');
  if (s3.length > 0) {
    const groups = [...new Set(s3.map((a) => a.group))];
    y = barPanel(
      parts,
      y,
      'Scenario 3 — saturation: (a) share of arrivals served, (b) share of the model’s ideal throughput',
      groups.map((g) => {
        const key = g.startsWith('a') ? 'throughputOfArrivals' : 'throughputOfIdeal';
        return {
          title: g,
          bars: s3.filter((a) => a.group === g).map((a) => ({ label: a.label, value: v(a, key), text: `${(v(a, key) * 100).toFixed(1)}%  · mean batch ${v(a, 'meanBatchSize').toFixed(1)}` })),
        };
      }),
      { value: 0.95, label: '95%' },
      1.05,
    );
  }

  const s4 = aggregates.filter((a) => a.scenario === 's4');
  if (s4.length > 0) {
    y = barPanel(parts, y, 'Scenario 4 — p99 wait in the batcher, Poisson at 50% of capacity, maxDelayMs 5 (lower is better)', [
      { bars: s4.map((a) => ({ label: a.label, value: v(a, 'waitP99Ms'), text: `${v(a, 'waitP99Ms').toFixed(2)} ms  (end-to-end p99 ${v(a, 'latencyP99Ms').toFixed(1)} ms)` })) },
    ], { value: 6, label: '6 ms target' }, 15, true);
  }

  const s5 = aggregates.filter((a) => a.scenario === 's5');
  if (s5.length > 0) {
    const groups: BarGroup[] = [];
    for (const model of ['silero', 'mlp']) {
      for (const load of ['burst', 'closed loop']) {
        const rows = s5.filter((a) => a.group === `${model} ${load}`);
        if (rows.length === 0) continue;
        groups.push({
          title: `${model === 'silero' ? 'Silero VAD v6' : 'MLP 256→1024→1024→10'}, ${load === 'burst' ? '10k concurrent requests' : '64 clients, closed loop'}`,
          bars: rows.map((a) => ({
            label: a.label,
            value: v(a, 'pairedEfficiency'),
            text: `${v(a, 'pairedEfficiency').toFixed(2)}  (${Math.round(v(a, 'throughputPerSec'))}/s, mean batch ${v(a, 'meanBatchSize').toFixed(1)})`,
          })),
        });
      }
    }
    y = barPanel(parts, y, 'Scenario 5 — real models: throughput ÷ the model alone at its best batch size (higher is better)', groups, { value: 0.9, label: '0.9 target' }, 1.2);
  }

  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function barPanel(
  parts: string[],
  top: number,
  title: string,
  groups: readonly BarGroup[],
  reference?: { readonly value: number; readonly label: string },
  fixedMax?: number,
  lowerIsBetter = false,
): number {
  let y = top;
  parts.push(text(16, y + 12, title, 13, 'bold'));
  y += 22;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter(Number.isFinite);
  const max = fixedMax ?? Math.max(...values, reference?.value ?? 0) * 1.05;
  const x0 = 16 + LABEL_W;
  const scale = (value: number): number => (Number.isFinite(value) ? Math.max(0, Math.min(1, value / max)) * BAR_W : 0);
  const panelTop = y;
  for (const group of groups) {
    if (group.title !== undefined) {
      parts.push(text(24, y + 11, group.title, 11, 'normal', '#333', 'italic'));
      y += 16;
    }
    for (const bar of group.bars) {
      parts.push(text(x0 - 8, y + 12, bar.label, 11, bar.label.startsWith('rx-batcher') ? 'bold' : 'normal', '#222', 'normal', 'end'));
      parts.push(`<rect x="${x0}" y="${y}" width="${scale(bar.value).toFixed(1)}" height="${BAR_H}" rx="2" fill="${COLORS[bar.label] ?? '#888'}"/>`);
      const offScale = Number.isFinite(bar.value) && bar.value > max;
      parts.push(text(x0 + scale(bar.value) + 6, y + 12, Number.isFinite(bar.value) ? `${offScale ? '» ' : ''}${bar.text}` : 'not measured', 11, 'normal', '#333'));
      y += BAR_H + GAP;
    }
    y += 4;
  }
  if (reference !== undefined && reference.value <= max) {
    const x = x0 + scale(reference.value);
    parts.push(`<line x1="${x.toFixed(1)}" y1="${panelTop - 2}" x2="${x.toFixed(1)}" y2="${y - 2}" stroke="#d62728" stroke-dasharray="4 3" stroke-width="1"/>`);
    parts.push(text(x + 3, y + 8, reference.label + (lowerIsBetter ? ' (max)' : ''), 10, 'normal', '#d62728'));
  }
  return y + 26;
}

function linePanel(parts: string[], top: number, title: string, cases: readonly Aggregate[]): number {
  let y = top;
  parts.push(text(16, y + 12, title, 13, 'bold'));
  y += 26;
  const sizes = [...new Set(cases.map((a) => a.group))];
  const labels = [...new Set(cases.map((a) => a.label))];
  const value = (group: string, label: string): number => cases.find((a) => a.group === group && a.label === label)?.median.nsPerRequest ?? Number.NaN;
  const all = cases.map((a) => a.median.nsPerRequest ?? Number.NaN).filter(Number.isFinite);
  const max = Math.max(...all, 1) * 1.1;
  const plotLeft = 16 + 60;
  const plotW = LABEL_W + BAR_W - 80;
  const plotH = 170;
  const xOf = (i: number): number => plotLeft + (sizes.length === 1 ? plotW / 2 : (i * plotW) / (sizes.length - 1));
  const yOf = (ns: number): number => y + plotH - (ns / max) * plotH;
  for (let k = 0; k <= 4; k++) {
    const ns = (max * k) / 4;
    parts.push(`<line x1="${plotLeft}" y1="${yOf(ns).toFixed(1)}" x2="${plotLeft + plotW}" y2="${yOf(ns).toFixed(1)}" stroke="#eee"/>`);
    parts.push(text(plotLeft - 6, yOf(ns) + 4, `${Math.round(ns)}`, 10, 'normal', '#666', 'normal', 'end'));
  }
  sizes.forEach((g, i) => parts.push(text(xOf(i), y + plotH + 16, g.replace('n=', '').replace(/000000$/, 'M').replace(/000$/, 'k'), 11, 'normal', '#333', 'normal', 'middle')));
  parts.push(text(plotLeft + plotW / 2, y + plotH + 32, 'concurrent calls (ns per request on the vertical axis)', 10, 'normal', '#666', 'normal', 'middle'));
  labels.forEach((label, li) => {
    const points = sizes.map((g, i) => [xOf(i), yOf(value(g, label))] as const).filter(([, py]) => Number.isFinite(py));
    const color = COLORS[label] ?? '#888';
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="${label === 'rx-batcher' ? 3 : 1.8}" points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`);
    for (const [px, py] of points) parts.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = y + 8 + li * 18;
    const lx = plotLeft + plotW + 30;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${color}"/>`);
    parts.push(text(lx + 20, ly, label, 11, label === 'rx-batcher' ? 'bold' : 'normal'));
  });
  return y + plotH + 52;
}

function text(x: number, y: number, content: string, size: number, weight = 'normal', fill = '#222', style = 'normal', anchor = 'start'): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${size}" font-weight="${weight}" font-style="${style}" fill="${fill}" text-anchor="${anchor}">${escapeXml(content)}</text>`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function kilo(x: number): string {
  return Number.isFinite(x) ? `${(x / 1000).toFixed(0)}k` : '–';
}
