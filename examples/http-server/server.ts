import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Batcher, BatcherStoppedError, QueueFullError, RequestTimeoutError, type BatcherStats } from 'rx-batcher';
import { loadSileroVad, type SileroFrame, type SileroResult, type SileroVad } from '../models';
import { loadSileroVadInThread } from '../models/sileroVadThread';
import { BINARY_TYPE, BadFrameError, frameFromBinary, frameFromJson, resultToBinary } from './codec';
import { guardTheDoor, tooLarge, type Door, type DoorStats } from './door';
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
  /**
   * Load the default model on a worker thread of its own (`loadSileroVadInThread`), so that
   * its batches do not hold the event loop: requests keep being read, refused and answered
   * while a batch runs. @default false
   */
  readonly modelOnThread?: boolean;
  /** @default 64 */
  readonly maxBatchSize?: number;
  /** @default 2 */
  readonly maxDelayMs?: number;
  /**
   * Requests allowed to wait for a batch. The door lets in at most this plus one batch
   * (`maxBatchSize`); more are answered 503 before their body is read. Size it so that the
   * queue is served well within the deadline: about `timeoutMs / 4` of batch times, times
   * `maxBatchSize` (see the recipe). @default 256
   */
  readonly maxQueueSize?: number;
  /**
   * Per-request deadline, counted from the request's arrival (its headers read, before its
   * body); the batcher gets only the time that is left, and a request with none left gets 504
   * without reaching the model. @default 1000
   */
  readonly timeoutMs?: number;
  /** Seconds a client is told to wait in `Retry-After` on 503. @default 1 */
  readonly retryAfterSeconds?: number;
  /** The largest request body, in bytes; larger ones get 413 naming the limit. @default 65536 */
  readonly bodyLimit?: number;
  /**
   * Answer 503 at the door while the event loop runs this late on average (measured by
   * `@fastify/under-pressure` every `sampleIntervalMs`); 0 turns it off. Keep it above one batch
   * time: onnxruntime-node runs the model on the event loop. @default 50
   */
  readonly maxEventLoopDelayMs?: number;
  /** How often the event-loop delay (and `healthCheck`) is sampled, in ms. @default 50 */
  readonly sampleIntervalMs?: number;
  /** Also answer 503 at the door while this returns `false` (checked every `sampleIntervalMs`). */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  /** Connections the kernel may hold for the server to accept (`listen`'s backlog). @default 4096 */
  readonly backlog?: number;
  /** The clock deadlines are read from, in ms (tests pass their own). @default performance.now */
  readonly now?: () => number;
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
  /** What the door did: requests let in, in progress, and refused (413, 503) by reason. */
  doorStats(): DoorStats;
  /**
   * Graceful shutdown: stops accepting connections, runs every request already queued
   * (`stop({ drain: true })`), answers them, then closes. Safe to call twice.
   */
  shutdown(): Promise<void>;
}

/**
 * Starts a fastify server with `POST /vad` (formats in `codec.ts`) and `GET /stats` (the
 * batcher's stats snapshot as JSON). Each request is one frame; frames of concurrent requests
 * are batched through one `Batcher`.
 *
 * It keeps its promises under overload. A request's deadline counts from its arrival, and the
 * batcher gets only the time that is left (504 when it runs out; a request with no time left
 * never reaches the model). At the door, before the body is read, a request is turned away
 * with 503 and `Retry-After` when the server is at capacity or its event loop runs late, and
 * with 413 when its body is over the limit; a malformed body gets 400. A client that
 * disconnects aborts its request (if still queued, its frame never reaches the model).
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
  const ownedModel = options.model !== undefined ? undefined : options.modelOnThread === true ? await loadSileroVadInThread() : await loadSileroVad();
  const model = options.model ?? ownedModel!;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const timeoutMs = options.timeoutMs ?? 1000;
  const maxBatchSize = options.maxBatchSize ?? 64;
  const maxQueueSize = options.maxQueueSize ?? 256;
  const bodyLimit = options.bodyLimit ?? 65_536;
  const now = options.now ?? (() => performance.now());
  const batcher = new Batcher<SileroFrame, SileroResult>({
    name: 'vad-http',
    runBatch: (frames) => model.runBatch(frames),
    maxBatchSize,
    maxDelayMs: options.maxDelayMs ?? 2,
    maxQueueSize,
  });

  const app = Fastify({ logger: false, bodyLimit });
  let closing = false;
  // While shutting down, every answer closes its connection, so no keep-alive socket holds the
  // server open after the last queued request is answered.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addContentTypeParser(BINARY_TYPE, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // Errors before the handler keep fastify's status (400 malformed JSON, 415 unknown type,
  // 503 from under-pressure) with a body like the handler's: `{ error }`. A body that turns
  // out longer than the limit while it is read (no Content-Length) gets the door's 413 message.
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status >= 500 && status !== 503) return reply.code(500).send({ error: 'internal error' });
    const message = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? tooLarge(bodyLimit) : error.message;
    return reply.code(status).send({ error: message });
  });

  // Only the model's route is behind the door; `/stats` answers however busy the server is.
  let door!: Door;
  await app.register(async (scope) => {
    door = await guardTheDoor(scope, {
      bodyLimit,
      maxInside: maxQueueSize + maxBatchSize,
      maxEventLoopDelayMs: options.maxEventLoopDelayMs ?? 50,
      sampleIntervalMs: options.sampleIntervalMs ?? 50,
      retryAfterSeconds: options.retryAfterSeconds ?? 1,
      healthCheck: options.healthCheck,
      now,
    });

    scope.post('/vad', async (request, reply) => {
      let frame: SileroFrame;
      try {
        frame = Buffer.isBuffer(request.body) ? frameFromBinary(request.body) : frameFromJson(request.body);
      } catch (error) {
        if (error instanceof BadFrameError) return reply.code(400).send({ error: error.message });
        throw error;
      }
      // The deadline counts from arrival: the time spent waiting to be read is already gone.
      const remainingMs = timeoutMs - (now() - door.arrivedAt(request));
      if (remainingMs <= 0) return reply.code(504).send({ error: missedDeadline(timeoutMs, 'before it reached the model') });
      // The response closing before we answered means the client went away: abort its request.
      const disconnected = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) disconnected.abort(new Error('the client disconnected'));
      };
      reply.raw.once('close', onClose);
      try {
        const result = await batcher.run(frame, { signal: disconnected.signal, timeoutMs: remainingMs });
        if (request.headers['content-type'] === BINARY_TYPE) return reply.type(BINARY_TYPE).send(resultToBinary(result));
        return { probability: result.probability, state: Array.from(result.state) };
      } catch (error) {
        if (disconnected.signal.aborted) return reply.code(499).send(); // nobody is listening any more
        if (error instanceof QueueFullError || error instanceof BatcherStoppedError) {
          return reply.code(503).header('retry-after', retryAfter).send({ error: `${error.message}; retry after ${retryAfter} s` });
        }
        if (error instanceof RequestTimeoutError) {
          return reply.code(504).send({ error: missedDeadline(timeoutMs, error.phase === 'queued' ? 'while it waited for a batch; it never reached the model' : 'while its batch was running') });
        }
        throw error;
      } finally {
        reply.raw.off('close', onClose);
      }
    });
  });

  app.get('/stats', async () => batcher.stats());

  const connections = trackConnections(app.server);
  // A large backlog: under a burst of new connections the kernel holds them until the event
  // loop accepts them, instead of dropping them (clients would retry after 1, 3, 7 s).
  await app.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1', backlog: options.backlog ?? 4096 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;

  let shuttingDown: Promise<void> | undefined;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    app,
    batcher,
    stats: () => batcher.stats(),
    doorStats: () => door.stats(),
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

/**
 * The 504 message: the deadline, counted from the request's arrival, and where it passed.
 *
 * @example
 * ```ts
 * missedDeadline(1000, 'before it reached the model');
 * // 'no answer within the deadline of 1000 ms from the request's arrival: it passed before it reached the model'
 * ```
 */
export function missedDeadline(timeoutMs: number, where: string): string {
  return `no answer within the deadline of ${timeoutMs} ms from the request's arrival: it passed ${where}`;
}
