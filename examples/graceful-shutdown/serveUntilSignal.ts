import type { BatcherStats } from 'rx-batcher';
import { startHttpModelServer, type HttpModelServer } from '../http-server/server';

/**
 * What {@link serveUntilSignal} reports as it goes.
 *
 * @example
 * ```ts
 * const log = (event: ShutdownEvent) => console.log(JSON.stringify(event));
 * ```
 */
export type ShutdownEvent =
  | { readonly event: 'listening'; readonly url: string }
  | { readonly event: 'draining'; readonly signal: string; readonly stats: BatcherStats }
  | { readonly event: 'stopped'; readonly stats: BatcherStats };

/**
 * Options of {@link serveUntilSignal}.
 *
 * @example
 * ```ts
 * const options: ServeOptions = { port: 8080, maxDelayMs: 2, log: console.log };
 * ```
 */
export interface ServeOptions {
  readonly port?: number;
  /** The batch window; a long one shows the drain at work (queued requests go out at once). */
  readonly maxDelayMs?: number;
  /** Answer 503 while the event loop runs this late (the server's default, 50); 0 turns load shedding off. */
  readonly maxEventLoopDelayMs?: number;
  readonly signals?: readonly NodeJS.Signals[];
  readonly log?: (event: ShutdownEvent) => void;
}

/**
 * Starts the batched HTTP model server and shuts it down gracefully on the first of `signals`
 * (SIGTERM and SIGINT by default): stop accepting connections, `stop({ drain: true })` so every
 * queued request runs now, answer them all, close every connection and free the model. Nothing
 * is left to keep the process alive, so it exits by itself, with code 0. A second signal
 * during the drain is ignored (the drain is already as fast as it can be).
 *
 * @example
 * ```ts
 * const { stopped } = await serveUntilSignal({ port: 8080 });
 * await stopped; // resolves after SIGTERM, once everything is answered and closed
 * ```
 */
export async function serveUntilSignal(options: ServeOptions = {}): Promise<{ server: HttpModelServer; stopped: Promise<void> }> {
  const log = options.log ?? (() => {});
  const server = await startHttpModelServer({
    port: options.port ?? 0, maxDelayMs: options.maxDelayMs ?? 2, timeoutMs: 30_000,
    ...(options.maxEventLoopDelayMs !== undefined ? { maxEventLoopDelayMs: options.maxEventLoopDelayMs } : {}),
  });
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const stopped = new Promise<void>((resolve, reject) => {
    const onSignal = (signal: NodeJS.Signals) => {
      for (const s of signals) process.off(s, onSignal);
      for (const s of signals) process.on(s, ignore); // a second Ctrl-C must not kill the drain
      log({ event: 'draining', signal, stats: server.stats() });
      server.shutdown().then(() => {
        for (const s of signals) process.off(s, ignore);
        log({ event: 'stopped', stats: server.stats() });
        resolve();
      }, reject);
    };
    for (const s of signals) process.on(s, onSignal);
  });
  log({ event: 'listening', url: server.url });
  return { server, stopped };
}

function ignore(): void {}
