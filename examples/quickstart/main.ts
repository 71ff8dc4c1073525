/**
 * `npm run demo:quickstart`: the same load against a simulated model (5 ms + 0.1 ms per item), with and
 * without batching. Prints progress while it runs, then a comparison table.
 */
import { formatTable, runQuickstart } from './quickstart';

async function main(): Promise<void> {
  const clients = 64;
  console.log(`rx-batcher quickstart: ${clients} concurrent clients against a simulated model (5 ms + 0.1 ms per item)\n`);
  const results = await runQuickstart({
    clients,
    durationMs: 2000,
    onProgress: (label, done, elapsedMs) => {
      const line = `  ${label}: ${done} requests answered in ${(elapsedMs / 1000).toFixed(1)} s`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
      else console.log(line);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  console.log(`\n${formatTable(results)}\n`);
  const [unbatched, batched] = results;
  console.log(`Batching served ${(batched.requestsPerSecond / unbatched.requestsPerSecond).toFixed(1)}x the requests per second.`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
