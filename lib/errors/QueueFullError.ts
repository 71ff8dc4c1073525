import { prefix } from './describe.js';

/** The option whose limit was reached: one name for every face. */
export type QueueLimit = 'maxQueueSize';

/**
 * `run()` was refused at once because `maxQueueSize` requests were already waiting: in a
 * local `Batcher`, queued for a batch; in a remote producer, sent and not yet answered.
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
    super(`${prefix(batcher)} the queue is full (${option} ${limit} requests waiting), so this request was refused. Retry later, shed load upstream, add capacity, or raise ${option}.`);
    this.batcher = batcher;
    this.option = option;
    this.limit = limit;
  }
}
