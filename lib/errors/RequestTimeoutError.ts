import { prefix } from './describe.js';

/**
 * Where a request was when its deadline passed. A remote producer (`rx-batcher/remote`) cannot
 * see whether a worker had picked the request up, so it always reports `'running'`.
 */
export type TimeoutPhase = 'queued' | 'running';

/**
 * A request's deadline (`timeoutMs`, counted from `run()`) passed before it settled.
 * A request that times out while queued never reaches `runBatch`; one that times out while
 * its batch runs is rejected at once and its result is dropped.
 *
 * @example
 * ```ts
 * await batcher.run(x, { timeoutMs: 200 }).catch((e) => e instanceof RequestTimeoutError);
 * ```
 */
export class RequestTimeoutError extends Error {
  /** Always `'RequestTimeoutError'`, so the class survives serialisation (e.g. in logs). */
  override readonly name = 'RequestTimeoutError';
  /** The `name` option of the batcher. */
  readonly batcher: string;
  /** The deadline that passed, in milliseconds from `run()`. */
  readonly timeoutMs: number;
  /** Whether the request was still queued or already in a running batch. */
  readonly phase: TimeoutPhase;

  /**
   * @param hint what to do about it; the default names the local `Batcher`'s options, and the
   * scale-out producer, which has neither a window nor slots, passes its own.
   */
  constructor(batcher: string, timeoutMs: number, phase: TimeoutPhase, hint = 'Raise timeoutMs, lower maxDelayMs, or add capacity (maxConcurrentBatches).') {
    super(`${prefix(batcher)} the request timed out after ${timeoutMs} ms while ${phase === 'queued' ? 'waiting in the queue' : 'its batch was running'}. ${hint}`);
    this.batcher = batcher;
    this.timeoutMs = timeoutMs;
    this.phase = phase;
  }
}
