import { prefix } from './describe';

/** Which limit was reached: the local `Batcher`'s queue, or a remote producer's in-flight requests. */
export type QueueLimit = 'maxQueueSize' | 'maxInFlight';

const WAITING: Record<QueueLimit, string> = {
  maxQueueSize: 'the queue is full',
  maxInFlight: 'too many requests are already waiting for workers',
};

const ADVICE: Record<QueueLimit, string> = {
  maxQueueSize: 'Retry later, shed load upstream, or raise maxQueueSize.',
  maxInFlight: 'Retry later, shed load upstream, add workers, or raise maxInFlight.',
};

/**
 * `run()` was refused at once because the batcher's limit was reached: `maxQueueSize`
 * requests waiting in a local `Batcher`, or `maxInFlight` requests sent by a remote producer.
 * Servers usually answer it with HTTP 503 and a `Retry-After` header.
 *
 * @example
 * ```ts
 * try { await batcher.run(x); }
 * catch (e) { if (e instanceof QueueFullError) reply.code(503).header('Retry-After', '1'); }
 * ```
 */
export class QueueFullError extends Error {
  /** Always `'QueueFullError'`, so the class survives serialisation (e.g. in logs). */
  override readonly name = 'QueueFullError';
  /** The `name` option of the batcher. */
  readonly batcher: string;
  /** The option whose limit was reached. */
  readonly option: QueueLimit;
  /** The limit that was reached. */
  readonly limit: number;

  constructor(batcher: string, limit: number, option: QueueLimit = 'maxQueueSize') {
    const counted = option === 'maxQueueSize' ? 'waiting' : 'in flight';
    super(`${prefix(batcher)} ${WAITING[option]} (${option} ${limit} requests ${counted}), so this request was refused. ${ADVICE[option]}`);
    this.batcher = batcher;
    this.option = option;
    this.limit = limit;
  }
}
