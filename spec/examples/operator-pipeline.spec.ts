import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scoreReadingsFile, sumOfScores } from '../../examples/operator-pipeline/pipeline';

// Runs the recipe for real: a temp file read with a Node stream, up to four batches at once whose
// model delays differ (real timers), every line's result and position checked.
describe('examples/operator-pipeline', () => {
  let dir: string;
  const file = (name: string, lines: string[]): string => {
    const path = join(dir, name);
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rx-batcher-pipeline-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('scores every line in file order, completes, and keeps bad lines from killing the pipeline', async () => {
    const readings = Array.from({ length: 100 }, (_, i) => String(i + 1));
    readings[6] = 'oops';
    readings[70] = '';
    // A window longer than the test: batches go only when full, and the last one when the file
    // ends, so their sizes do not depend on how fast the lines are read.
    const { lines, batchSizes } = await scoreReadingsFile(file('mixed.txt', readings), { maxBatchSize: 8, maxConcurrentBatches: 4, maxDelayMs: 60_000 });

    expect(lines).toHaveLength(100);
    expect(lines[0]).toBe('1: 1');
    expect(lines[6]).toBe('7: skipped (not a number: "oops")');
    expect(lines[70]).toBe('71: skipped (not a number: "")');
    expect(lines[99]).toBe('100: 10000');
    const expected = readings.map((r, i) => (i === 6 || i === 70 ? lines[i] : `${i + 1}: ${(i + 1) ** 2}`));
    expect(lines).toEqual(expected);

    expect(batchSizes).toEqual([...Array<number>(12).fill(8), 4]); // 100 readings: 12 full batches, then the rest
  });

  it('with plain batchMap, a bad line errors the stream and a clean file completes', async () => {
    await expect(sumOfScores(file('bad.txt', ['1', '2', 'x', '4']))).rejects.toThrow('not a number: "x"');
    await expect(sumOfScores(file('good.txt', ['1', '2', '3', '4']))).resolves.toBe(1 + 4 + 9 + 16);
  });
});
