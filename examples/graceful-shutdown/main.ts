/**
 * Graceful shutdown: serve, and on SIGTERM (or Ctrl-C) stop taking connections, run every
 * request already queued, answer it, and exit by itself with nothing left running.
 *
 *     npx tsx examples/graceful-shutdown/main.ts
 *     PORT=8080 BATCH_DELAY_MS=5 npx tsx examples/graceful-shutdown/main.ts
 *     MAX_EVENT_LOOP_DELAY_MS=0 npx tsx examples/graceful-shutdown/main.ts   # no 503 when the event loop runs late
 *
 * It prints one JSON line per event (`listening`, `draining`, `stopped`) so a supervisor or a
 * test can follow it. Exit code 0 means every request it accepted was answered.
 */
import { serveUntilSignal } from './serveUntilSignal';

serveUntilSignal({
  port: Number(process.env.PORT ?? 0),
  maxDelayMs: Number(process.env.BATCH_DELAY_MS ?? 2),
  ...(process.env.MAX_EVENT_LOOP_DELAY_MS !== undefined ? { maxEventLoopDelayMs: Number(process.env.MAX_EVENT_LOOP_DELAY_MS) } : {}),
  log: (event) => console.log(JSON.stringify(event)),
})
  .then(({ stopped }) => stopped)
  .catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
