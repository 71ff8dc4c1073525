import Fastify, { type FastifyInstance } from 'fastify';
import { Batcher, BatcherStoppedError, QueueFullError, RequestTimeoutError, type BatcherStats } from 'rx-batcher';
import { loadSileroVad, type SileroFrame, type SileroResult, type SileroVad } from '../models';
import { BINARY_TYPE, BadFrameError, frameFromBinary, frameFromJson, resultToBinary } from './codec';
import { trackConnections } from './idleConnections';

/**
 * Options of {@link startHttpModelServer}.
 *
 * @example
 * ```ts
 * const options: HttpModelServerOptions = { port: 8080, maxQueueSize: 512, timeoutMs: 500 };
 * ```
 */
export interface HttpModelServerOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** The model; by default the server loads Silero VAD and closes it on shutdown. A model passed in is not closed. */
  readonly model?: Pick<SileroVad, 'runBatch'>;
  /** @default 64 */
  readonly maxBatchSize?: number;
  /** @default 2 */
  readonly maxDelayMs?: number;
  /** Requests allowed to wait; more are answered 503 at once. @default 256 */
  readonly maxQueueSize?: number;
  /** Per-request deadline from arrival; answered 504 when it passes. @default 1000 */
  readonly timeoutMs?: number;
  /** Seconds a client is told to wait in `Retry-After` on 503. @default 1 */
  readonly retryAfterSeconds?: number;
}

/**
 * A running HTTP model server.
 *
 * @example
 * ```ts
 * const server = await startHttpModelServer();
 * process.once('SIGTERM', () => void server.shutdown());
 * ```
 */
export interface HttpModelServer {
  /** e.g. `http://127.0.0.1:40123`; POST frames to `${url}/vad`. */
  readonly url: string;
  readonly app: FastifyInstance;
  /** The batcher in front of the model (for stats, `stats$`, `results$`). */
  readonly batcher: Batcher<SileroFrame, SileroResult>;
  stats(): BatcherStats;
  /**
   * Graceful shutdown: stops accepting connections, runs every request already queued
   * (`stop({ drain: true })`), answers them, then closes. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/**
 * Starts a fastify server with `POST /vad` (formats in `codec.ts`) and `GET /stats` (the
 * batcher's stats snapshot as JSON). Each request is one frame; frames of concurrent requests
 * are batched through one `Batcher`. A full queue answers 503 with `Retry-After`, a passed
 * deadline 504, and a client that disconnects aborts its request (if still queued, its frame
 * never reaches the model).
 *
 * @example
 * ```ts
 * const server = await startHttpModelServer({ port: 0, maxQueueSize: 256, timeoutMs: 1000 });
 * const response = await fetch(`${server.url}/vad`, {
 *   method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ samples }),
 * });
 * const { probability, state } = await response.json();
 * await server.shutdown();
 * ```
 */
export async function startHttpModelServer(options: HttpModelServerOptions = {}): Promise<HttpModelServer> {
  const ownedModel = options.model === undefined ? await loadSileroVad() : undefined;
  const model = options.model ?? ownedModel!;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const batcher = new Batcher<SileroFrame, SileroResult>({
    name: 'vad-http',
    runBatch: (frames) => model.runBatch(frames),
    maxBatchSize: options.maxBatchSize ?? 64,
    maxDelayMs: options.maxDelayMs ?? 2,
    maxQueueSize: options.maxQueueSize ?? 256,
    timeoutMs: options.timeoutMs ?? 1000,
  });

  const app = Fastify({ logger: false });
  let closing = false;
  // While shutting down, every answer closes its connection, so no keep-alive socket holds the
  // server open after the last queued request is answered.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addContentTypeParser(BINARY_TYPE, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.post('/vad', async (request, reply) => {
    let frame: SileroFrame;
    try {
      frame = Buffer.isBuffer(request.body) ? frameFromBinary(request.body) : frameFromJson(request.body);
    } catch (error) {
      if (error instanceof BadFrameError) return reply.code(400).send({ error: error.message });
      throw error;
    }
    // The response closing before we answered means the client went away: abort its request.
    const disconnected = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) disconnected.abort(new Error('the client disconnected'));
    };
    reply.raw.once('close', onClose);
    try {
      const result = await batcher.run(frame, { signal: disconnected.signal });
      if (request.headers['content-type'] === BINARY_TYPE) return reply.type(BINARY_TYPE).send(resultToBinary(result));
      return { probability: result.probability, state: Array.from(result.state) };
    } catch (error) {
      if (disconnected.signal.aborted) return reply.code(499).send(); // nobody is listening any more
      if (error instanceof QueueFullError || error instanceof BatcherStoppedError) {
        return reply.code(503).header('retry-after', retryAfter).send({ error: `${error.message}; retry after ${retryAfter} s` });
      }
      if (error instanceof RequestTimeoutError) return reply.code(504).send({ error: error.message });
      throw error;
    } finally {
      reply.raw.off('close', onClose);
    }
  });

  app.get('/stats', async () => batcher.stats());

  const connections = trackConnections(app.server);
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;

  let shuttingDown: Promise<void> | undefined;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    app,
    batcher,
    stats: () => batcher.stats(),
    shutdown: () =>
      (shuttingDown ??= (async () => {
        closing = true;
        const closed = app.close(); // no new connections; requests in progress continue
        await batcher.stop({ drain: true }); // queued frames run now and are answered
        connections.closeIdle(); // busy ones close after their answer (connection: close)
        await closed;
        await ownedModel?.close();
      })()),
  };
}
