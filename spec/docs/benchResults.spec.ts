import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBenchResults } from '../../docs/.vitepress/benchResults';

// The docs site's Benchmarks page and Home chart come from bench/results/ at build time;
// whatever is (or is not) there must never break the build.
describe('docs: reading bench/results for the Benchmarks page', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rx-batcher-bench-results-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('has nothing to show when the folder is empty or missing', () => {
    expect(readBenchResults(dir)).toEqual({ tables: [], facts: [], chart: null, sections: [] });
    expect(readBenchResults(join(dir, 'missing'))).toEqual({ tables: [], facts: [], chart: null, sections: [] });
  });

  it('turns latest.json into titled tables and facts, and inlines latest.svg', () => {
    writeFileSync(
      join(dir, 'latest.json'),
      JSON.stringify({
        title: 'rx-batcher against its peers',
        date: '2026-01-01T00:00:00Z',
        machine: { cpus: 2, node: '20.20.2' },
        tables: [{ title: 'Overhead', rows: [{ implementation: 'rx-batcher', 'requests/s': 512000, 'p99 ms': 1.234 }, { implementation: 'dataloader', 'requests/s': 483000.5, 'p99 ms': null }] }],
        targets: [{ target: 'batching pays', met: true }],
        cases: [{ nested: { not: 'a table' } }],
      }),
    );
    writeFileSync(join(dir, 'latest.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    const data = readBenchResults(dir);

    expect(data.tables).toEqual([
      { title: 'Overhead', columns: ['implementation', 'requests/s', 'p99 ms'], rows: [['rx-batcher', '512,000', '1.23'], ['dataloader', '483,000.5', '']] },
      { title: 'Targets', columns: ['target', 'met'], rows: [['batching pays', 'true']] },
    ]);
    expect(data.facts).toEqual([
      ['title', 'rx-batcher against its peers'],
      ['date', '2026-01-01T00:00:00Z'],
      ['machine', 'cpus: 2, node: 20.20.2'],
    ]);
    expect(data.chart?.file).toBe('latest.svg');
    expect(Buffer.from(data.chart!.src.replace('data:image/svg+xml;base64,', ''), 'base64').toString()).toContain('<svg');
  });

  it('shows every other results file (not quick.json) as a section with its notes', () => {
    writeFileSync(
      join(dir, 'remote.json'),
      JSON.stringify({ generatedAt: '2026-01-01', notes: ['brokers share this machine', 3], rows: [{ transport: 'redis', 'requests/s': 9000 }] }),
    );
    writeFileSync(join(dir, 'quick.json'), JSON.stringify({ rows: [{ smoke: 1 }] }));
    writeFileSync(join(dir, 'empty.json'), JSON.stringify({ nothing: [] }));
    expect(readBenchResults(dir).sections).toEqual([
      {
        title: 'Across processes: Redis Streams and NATS (bench:remote)',
        file: 'remote.json',
        tables: [{ title: 'Rows', columns: ['transport', 'requests/s'], rows: [['redis', '9,000']] }],
        facts: [['generatedAt', '2026-01-01']],
        notes: ['brokers share this machine'],
      },
    ]);
  });

  it('survives a results file that is not JSON', () => {
    writeFileSync(join(dir, 'latest.json'), '{ half written');
    writeFileSync(join(dir, 'other.json'), '[');
    expect(readBenchResults(dir)).toEqual({ tables: [], facts: [['note', 'bench/results/latest.json is not valid JSON']], chart: null, sections: [] });
  });
});
