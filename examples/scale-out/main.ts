// npx tsx examples/scale-out/main.ts — the recipe "Scale out with Redis Streams": the
// streaming VAD server as a front end, two Silero VAD worker processes behind one remoteBatcher. Uses REDIS_URL when set;
// otherwise starts a private redis-server (from PATH) on a unix socket in a temp folder.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runScaleOut } from './scaleOut';

async function privateRedis(): Promise<{ url: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'rxb-scale-out-'));
  const socket = join(dir, 'redis.sock');
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--dir', dir, '--save', ''], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ready, fail) => {
    let log = '';
    child.stdout!.on('data', (chunk: Buffer) => ((log += chunk), /ready to accept connections/i.test(log) && ready()));
    child.once('error', (e) => fail(new Error(`could not start redis-server (install it, or set REDIS_URL): ${e.message}`)));
    child.once('exit', (code) => fail(new Error(`redis-server exited (${code}):\n${log}`)));
  });
  return { url: socket, stop: () => (child.kill('SIGTERM'), rmSync(dir, { recursive: true, force: true })) };
}

async function main(): Promise<void> {
  const redis = process.env.REDIS_URL ? { url: process.env.REDIS_URL, stop: () => undefined } : await privateRedis();
  try {
    const report = await runScaleOut({ url: redis.url, workers: 2, streams: 16 });
    console.log(`${report.streams} audio streams, ${report.frames} frames in ${report.seconds.toFixed(2)} s: ${Math.round(report.framesPerSecond)} frames/s`);
    for (const w of report.workers) console.log(`  worker ${w.pid}: ${w.frames} frames in ${w.batches} batches (mean ${w.meanBatchSize.toFixed(1)})`);
    const events = report.events.map((e) => `${e.type} at ${e.time.toFixed(2)} s`).join(', ');
    console.log(`stream 1: ${events}; max |Δ| against one-at-a-time scoring: ${report.maxDifference}`);
  } finally {
    redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
