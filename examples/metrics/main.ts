/**
 * `npx tsx examples/metrics/main.ts [--serve]`: runs some load through a batcher and prints
 * its Prometheus metrics as scraped from http://127.0.0.1:9464/metrics. With `--serve` it
 * keeps serving (and sending load) until Ctrl-C, so you can point Prometheus at it.
 */
import { startMonitoredApp } from './app';

async function sendLoad(run: (x: number) => Promise<number>, requests: number): Promise<void> {
  // Every 50th input is negative: those requests fail on their own, the rest succeed.
  await Promise.allSettled(Array.from({ length: requests }, (_, i) => run(i % 50 === 49 ? -i : i)));
}

async function main(): Promise<void> {
  const serve = process.argv.includes('--serve');
  const app = await startMonitoredApp({ port: 9464, processMetrics: serve });
  await sendLoad((x) => app.batcher.run(x), 500);

  if (!serve) {
    const text = await (await fetch(app.metrics.url)).text();
    console.log(`GET ${app.metrics.url}\n`);
    console.log(text.split('\n').filter((line) => /^rx_batcher_(requests_total|batches_total|batch_size_(sum|count)|queue_depth|in_flight|queue_wait_seconds_count)/.test(line)).join('\n'));
    await app.close();
    return;
  }
  console.log(`Serving ${app.metrics.url} — Ctrl-C to stop`);
  const timer = setInterval(() => void sendLoad((x) => app.batcher.run(x), 200), 1000);
  process.once('SIGINT', () => {
    clearInterval(timer);
    void app.close();
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
