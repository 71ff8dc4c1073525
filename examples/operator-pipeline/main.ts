/**
 * `npx tsx examples/operator-pipeline/main.ts [file]`: scores a file of readings (one number
 * per line) through `batchMapSettled`. Without a file it writes a small sample with one bad line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scoreReadingsFile, sumOfScores } from './pipeline';

async function main(): Promise<void> {
  let path = process.argv[2];
  let dir: string | undefined;
  if (path === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'rx-batcher-readings-'));
    path = join(dir, 'readings.txt');
    const readings = Array.from({ length: 40 }, (_, i) => String(i + 1));
    readings[12] = 'sensor offline';
    writeFileSync(path, readings.join('\n') + '\n');
  }
  try {
    const { lines, batchSizes } = await scoreReadingsFile(path);
    for (const line of lines) console.log(line);
    console.log(`\n${lines.length} readings in ${batchSizes.length} model calls (sizes ${batchSizes.join(', ')})`);
    await sumOfScores(path).then(
      (sum) => console.log(`plain batchMap: sum of scores ${sum}`),
      (error: Error) => console.log(`plain batchMap: the stream errored on the first bad line: ${error.message}`),
    );
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
