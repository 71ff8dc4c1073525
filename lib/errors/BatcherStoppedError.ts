import { prefix } from './describe.js';

/** When a stopped batcher refused a request. */
export type StoppedWhen = 'before-run' | 'queued' | 'running' | 'unsubscribed';

const DETAIL: Record<StoppedWhen, string> = {
  'before-run': 'run() was called after stop(). Stopping is irreversible: create a new Batcher to serve more requests.',
  queued: 'stop() was called while this request was still queued. Use stop({ drain: true }) to finish queued requests before stopping.',
  running: 'stop() was called while this batch was running (the abort reason of ctx.signal); results it still returns are delivered.',
  unsubscribed: 'its subscriber unsubscribed while this batch was running.',
};

/**
 * A request could not be served because its batcher was stopped: `run()` was called after
 * `stop()`, or the request was still queued when a non-draining `stop()` discarded the queue.
 * Also the `ctx.signal` reason of batches running when `stop()` was called.
 *
 * @example
 * ```ts
 * await batcher.stop();
 * await batcher.run(x).catch((e) => e instanceof BatcherStoppedError); // true
 * ```
 */
export class BatcherStoppedError extends Error {
  /** Always `'BatcherStoppedError'`, so the class survives serialisation (e.g. in logs). */
  override readonly name = 'BatcherStoppedError';
  /** The `name` option of the batcher that refused the request. */
  readonly batcher: string;
  /** When the stop caught the request. */
  readonly when: StoppedWhen;

  constructor(batcher: string, when: StoppedWhen = 'before-run') {
    super(`${prefix(batcher)} the batcher is stopped: ${DETAIL[when]}`);
    this.batcher = batcher;
    this.when = when;
  }
}
