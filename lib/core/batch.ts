import type { Subscriber, Subscription } from 'rxjs';
import type { BatchContext, DispatchReason } from '../types';
import type { EngineRequest } from './request';

/**
 * One sealed batch: its requests, and the {@link BatchContext} handed to `runBatch`.
 * The AbortController behind `signal` is created only if `runBatch` reads it.
 */
export class Batch<I, O> implements BatchContext {
  /** Requests of this batch still waiting for its result. */
  live: number;
  /** The subscription to an Observable `runBatch` returned, to cancel it when nobody waits. */
  inner: Subscription | undefined = undefined;
  /** The `mergeMap` inner subscriber that holds this batch's slot; completed when the batch finishes. */
  runner: Subscriber<never> | undefined = undefined;
  /** Set once the batch's result was handled; later results are ignored. */
  done = false;
  /** When `runBatch` was called, on the window scheduler clock. */
  startedAt = 0;
  private controller: AbortController | undefined = undefined;
  private abortReason: unknown = undefined;
  private aborted = false;

  constructor(
    readonly batchId: number,
    readonly requests: EngineRequest<I, O>[],
    readonly reason: DispatchReason,
    readonly partition: string | undefined,
  ) {
    this.live = requests.length;
  }

  get size(): number {
    return this.requests.length;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** Aborts `signal` (once). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  get isAborted(): boolean {
    return this.aborted;
  }

  /** The inputs in the order results must come back in. */
  inputs(): I[] {
    const rs = this.requests;
    const out = new Array<I>(rs.length);
    for (let i = 0; i < rs.length; i++) out[i] = rs[i].input;
    return out;
  }
}
