import { prefix } from './describe';

/**
 * `run()` was refused at once because `maxQueueSize` requests were already waiting.
 * Servers usually answer it with HTTP 503 and a `Retry-After` header.
 *
 * @example
 * ```ts
 * try { await batcher.run(x); }
 * catch (e) { if (e instanceof QueueFullError) reply.code(503).header('Retry-After', '1'); }
 * ```
 */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  /** The `name` option of the batcher. */
  readonly batcher: string;
  /** The limit that was reached. */
  readonly maxQueueSize: number;

  constructor(batcher: string, maxQueueSize: number) {
    super(
      `${prefix(batcher)} the queue is full (maxQueueSize ${maxQueueSize} requests waiting), so this request was refused. ` +
        'Retry later, shed load upstream, or raise maxQueueSize.',
    );
    this.batcher = batcher;
    this.maxQueueSize = maxQueueSize;
  }
}
