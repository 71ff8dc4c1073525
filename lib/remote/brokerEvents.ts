import { describeValue } from '../errors/describe.js';
import { fail } from '../options/normalizeOptions.js';

/**
 * What happened to a connection to the broker, as a transport link reports it. Transports
 * reconnect on their own; these tell the producer and the worker (and, through
 * `onBrokerEvent`, you) that it happened.
 *
 * - `'disconnected'`: a connection dropped (a reset, the broker restarting, …).
 * - `'reconnected'`: it is back.
 * - `'resubscribed'` (producers): the reply subscription is live again. Replies published
 *   while it was down were lost, so the producer re-sends the requests that may have been
 *   answered meanwhile (a duplicate answer is dropped by id).
 *
 * @example
 * ```ts
 * const event: LinkEvent = { type: 'disconnected', connection: 'replies', error: new Error('read ECONNRESET') };
 * ```
 */
export interface LinkEvent {
  readonly type: 'disconnected' | 'reconnected' | 'resubscribed';
  /** Which of the link's connections, e.g. `'commands'`, `'replies'`, `'pull'` (Redis) or `'connection'` (NATS: one shared). */
  readonly connection: string;
  /** Why it dropped, when the client said. */
  readonly error?: Error;
}

/**
 * A {@link LinkEvent} as `onBrokerEvent` of `remoteBatcher` and `serveBatches` receives it: with
 * the transport and subject, and for `'resubscribed'` how many requests were re-sent.
 *
 * @example
 * ```ts
 * const scorer = remoteBatcher(transport, 'scorer', {
 *   onBrokerEvent: (e) => log.info(`${e.transport} ${e.connection} ${e.type}`, e.error?.message),
 * });
 * ```
 */
export interface BrokerEvent extends LinkEvent {
  /** The transport's `kind`, e.g. `'redis'`. */
  readonly transport: string;
  /** The subject of the producer or worker. */
  readonly subject: string;
  /** `'resubscribed'` only: requests re-sent because their reply may have been lost. */
  readonly resent?: number;
}

/**
 * Connection counters shared by producers and workers (`stats().disconnects`, `reconnects`).
 *
 * @example
 * ```ts
 * const counts = new ConnectionCounts();
 * counts.count({ type: 'disconnected', connection: 'replies' });
 * ```
 */
export class ConnectionCounts {
  disconnects = 0;
  reconnects = 0;
  resubscribes = 0;

  count(event: LinkEvent): void {
    if (event.type === 'disconnected') this.disconnects++;
    else if (event.type === 'reconnected') this.reconnects++;
    else this.resubscribes++;
  }
}

/**
 * Hands an event to the user's `onBrokerEvent`; a throwing handler must not break the link.
 *
 * @example
 * ```ts
 * emitBrokerEvent(options.onBrokerEvent, { ...event, transport: 'redis', subject: 'scorer' });
 * ```
 */
export function emitBrokerEvent(handler: ((event: BrokerEvent) => void) | undefined, event: BrokerEvent): void {
  if (handler === undefined) return;
  try {
    handler(event);
  } catch {
    // a throwing event handler must not stop the producer or the worker
  }
}

/** Validates `onBrokerEvent` of a face. */
export function checkOnBrokerEvent(name: string, value: unknown): ((event: BrokerEvent) => void) | undefined {
  if (value !== undefined && typeof value !== 'function') {
    fail('type', name, `\`onBrokerEvent\` must be a function (event) => void, got ${describeValue(value)}.`);
  }
  return value as ((event: BrokerEvent) => void) | undefined;
}

/** The longest `maxReconnectDelayMs` accepted: beyond it an outage would outlast most deadlines unnoticed. */
const RECONNECT_CAP_MS = 60_000;

/**
 * How long a transport waits before each reconnection attempt: `reconnectDelayMs` first,
 * doubling with each failed attempt, at most `maxReconnectDelayMs`.
 *
 * @example
 * ```ts
 * const delays = reconnectDelays('redisTransport', { reconnectDelayMs: 20, maxReconnectDelayMs: 1000 });
 * delays.after(1); // 20, then 40, 80, … 1000
 * ```
 */
export interface ReconnectDelays {
  readonly firstMs: number;
  readonly maxMs: number;
  /** The wait before attempt `attempt` (1 = the first after a drop). */
  after(attempt: number): number;
}

/**
 * Validates a transport's `reconnectDelayMs` (default 20) and `maxReconnectDelayMs` (default
 * 1000, at most 60 s), with typed errors naming the option and the bad value.
 *
 * @example
 * ```ts
 * reconnectDelays('natsTransport', { reconnectDelayMs: 10 }).after(3); // 40
 * ```
 */
export function reconnectDelays(name: string, options: { readonly reconnectDelayMs?: unknown; readonly maxReconnectDelayMs?: unknown }): ReconnectDelays {
  const check = (option: string, value: unknown, min: number, fallback: number): number => {
    if (value === undefined) return fallback;
    const rule = `\`${option}\` must be a number of milliseconds from ${min} to ${RECONNECT_CAP_MS}, got ${describeValue(value)}.`;
    if (typeof value !== 'number') fail('type', name, rule);
    if (!Number.isFinite(value) || value < min || value > RECONNECT_CAP_MS) fail('range', name, `${rule} Keep the first retry within tens of milliseconds (the default is 20) and cap the back-off at a second or so (the default is 1000).`);
    return value;
  };
  const firstMs = check('reconnectDelayMs', options.reconnectDelayMs, 1, 20);
  const maxMs = check('maxReconnectDelayMs', options.maxReconnectDelayMs, 1, Math.max(1000, firstMs));
  if (maxMs < firstMs) {
    fail('range', name, `\`maxReconnectDelayMs\` (${maxMs}) must be at least \`reconnectDelayMs\` (${firstMs}): it caps the doubling delay between reconnection attempts.`);
  }
  return { firstMs, maxMs, after: (attempt) => Math.min(maxMs, firstMs * 2 ** Math.max(0, Math.min(30, attempt - 1))) };
}
