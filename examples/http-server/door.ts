import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Options of {@link guardTheDoor}.
 *
 * @example
 * ```ts
 * const options: DoorOptions = { bodyLimit: 65_536, maxInside: 320, maxEventLoopDelayMs: 40, sampleIntervalMs: 50, retryAfterSeconds: 1, now: () => performance.now() };
 * ```
 */
export interface DoorOptions {
  /** The largest request body accepted, in bytes; a larger `Content-Length` is answered 413 at once. */
  readonly bodyLimit: number;
  /**
   * Requests let in and not answered yet (reading their body, queued or in a running batch)
   * beyond which new ones are answered 503 at once: what the batcher can hold
   * (`maxQueueSize` + `maxBatchSize`) and answer within the deadline.
   */
  readonly maxInside: number;
  /**
   * Answer 503 while the event loop runs late by more than this, on average over the last
   * `sampleIntervalMs` (measured by `@fastify/under-pressure`); 0 turns it off.
   */
  readonly maxEventLoopDelayMs: number;
  /** How often the event-loop delay is sampled. */
  readonly sampleIntervalMs: number;
  /** Seconds a client is told to wait in `Retry-After`. */
  readonly retryAfterSeconds: number;
  /** Also answer 503 while this resolves to `false` (checked every `sampleIntervalMs`): e.g. a dependency is down. */
  readonly healthCheck?: () => boolean | Promise<boolean>;
  /** The clock arrival times are read from, in milliseconds. */
  readonly now: () => number;
}

/**
 * What the door knows about the requests it let in.
 *
 * @example
 * ```ts
 * const remaining = timeoutMs - (now() - door.arrivedAt(request));
 * ```
 */
export interface Door {
  /** When the request arrived (on the door's clock): its headers were read, before its body. */
  arrivedAt(request: FastifyRequest): number;
  /** What the door did so far. */
  stats(): DoorStats;
}

/**
 * Counters of a {@link Door}: requests let in, and refused at the door by reason.
 *
 * @example
 * ```ts
 * const { inside, refusedAtCapacity, refusedOverloaded } = door.stats();
 * ```
 */
export interface DoorStats {
  /** Requests let in and not answered yet. */
  readonly inside: number;
  /** Requests let in so far. */
  readonly admitted: number;
  /** 413: `Content-Length` over the limit. */
  readonly tooLarge: number;
  /** 503: `maxInside` requests were in. */
  readonly refusedAtCapacity: number;
  /** 503: the event loop ran late. */
  readonly refusedOverloaded: number;
  /** 503: the health check failed. */
  readonly refusedUnhealthy: number;
  /** The event loop's mean delay over the last sample, in ms (under-pressure's measure). */
  readonly eventLoopDelayMs: number;
  /** The event loop runs late or the health check fails now: requests are refused unless none is in. */
  readonly underPressure: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the door: when the request arrived, on the door's clock. */
    arrivedAt: number;
  }
}

/**
 * Guards a fastify server's door: every request is timed on arrival (its deadline counts from
 * then), and turned away **before its body is read** when it cannot be served:
 *
 * - `Content-Length` above `bodyLimit` → 413, naming the limit (the body is read and dropped,
 *   so the client gets the answer, not a reset connection);
 * - the event loop runs late (or the health check fails) → 503 + `Retry-After`, by
 *   `@fastify/under-pressure`;
 * - `maxInside` requests are already in → 503 + `Retry-After`.
 *
 * A refusal here costs a few microseconds, so the server keeps answering at once however much
 * is offered. Register it before the routes.
 *
 * @example
 * ```ts
 * const door = await guardTheDoor(app, { bodyLimit: 65_536, maxInside: 320, maxEventLoopDelayMs: 40, sampleIntervalMs: 50, retryAfterSeconds: 1, now: () => performance.now() });
 * app.post('/vad', async (request) => {
 *   const remaining = 1000 - (performance.now() - door.arrivedAt(request));
 *   return batcher.run(frameOf(request.body), { timeoutMs: remaining });
 * });
 * ```
 */
export async function guardTheDoor(app: FastifyInstance, options: DoorOptions): Promise<Door> {
  const { bodyLimit, maxInside, now } = options;
  const retryAfter = String(options.retryAfterSeconds);
  // Requests let in and not answered yet; each leaves when its response closes (sent or not).
  let inside = 0;
  // What the door did so far, by outcome.
  const counts = { admitted: 0, tooLarge: 0, refusedAtCapacity: 0, refusedOverloaded: 0, refusedUnhealthy: 0 };
  const leave = (): void => {
    inside--;
  };
  app.decorateRequest('arrivedAt', 0);

  // Refusals are written once, here: a refused request costs no JSON serialisation.
  const full = refusal(`the server is at capacity (${maxInside} requests in progress); retry after ${retryAfter} s`);
  const overloaded = refusal(`the server is overloaded (its event loop runs late); retry after ${retryAfter} s`);
  const unhealthy = refusal(`the server cannot serve requests now (health check failed); retry after ${retryAfter} s`);

  app.addHook('onRequest', (request, reply, done) => {
    request.arrivedAt = now();
    const length = Number(request.headers['content-length']);
    if (length > bodyLimit) {
      counts.tooLarge++;
      return void reply.code(413).send({ error: tooLarge(bodyLimit, length) });
    }
    if (inside >= maxInside) {
      counts.refusedAtCapacity++;
      return void refuse(reply, retryAfter, full);
    }
    counts.admitted++;
    inside++;
    reply.raw.once('close', leave);
    done();
  });

  // Event-loop delay and the health check: under-pressure samples them every
  // `sampleIntervalMs`, and its own onRequest hook (which runs after the one above) calls this
  // while either is bad. A late event loop with no other request in progress says nothing
  // about this one (the sample may predate the last answer): it goes in, if healthy. A
  // returned payload is sent by under-pressure, which then stops the request (its README; its
  // types say `void`).
  const { healthCheck } = options;
  let healthy = true; // the health check's last answer
  const onPressure = (_request: FastifyRequest, reply: FastifyReply, type: string): string | undefined => {
    const unhealthyNow = type === underPressure.TYPE_HEALTH_CHECK || !healthy;
    if (!unhealthyNow && inside <= 1) return undefined;
    // Let in a moment ago by the hook above; refused now.
    counts.admitted--;
    if (unhealthyNow) counts.refusedUnhealthy++;
    else counts.refusedOverloaded++;
    reply.code(503).header('retry-after', retryAfter).type(JSON_TYPE);
    return unhealthyNow ? unhealthy : overloaded;
  };
  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    sampleInterval: options.sampleIntervalMs,
    pressureHandler: onPressure as NonNullable<FastifyUnderPressureOptions['pressureHandler']>,
    ...(healthCheck ? { healthCheck: async () => (healthy = await healthCheck()), healthCheckInterval: options.sampleIntervalMs } : {}),
  });

  return {
    arrivedAt: (request) => request.arrivedAt,
    stats: () => ({ inside, ...counts, eventLoopDelayMs: app.memoryUsage().eventLoopDelay, underPressure: app.isUnderPressure() }),
  };
}

/**
 * The 413 message: names the limit and the size sent.
 *
 * @example
 * ```ts
 * tooLarge(65_536, 20_971_520); // 'the request body is 20971520 bytes; this server accepts at most 65536 bytes (64 KiB)'
 * ```
 */
export function tooLarge(limit: number, length?: number): string {
  const sent = length === undefined || !Number.isFinite(length) ? 'the request body is too large' : `the request body is ${length} bytes`;
  return `${sent}; this server accepts at most ${limit} bytes (${formatBytes(limit)})`;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function refusal(message: string): string {
  return JSON.stringify({ error: message });
}

function refuse(reply: FastifyReply, retryAfter: string, payload: string): void {
  reply.code(503).header('retry-after', retryAfter).type(JSON_TYPE).send(payload);
}

function formatBytes(bytes: number): string {
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}
