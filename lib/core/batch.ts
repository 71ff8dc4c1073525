import type { Subscription } from 'rxjs';
import type { BatchContext, BatchReport, DispatchReason } from '../types.js';
import type { FinishedBatch } from './counters.js';
import type { LateResult } from './lateResult.js';
import type { EngineRequest } from './request.js';

/**
 * One sealed batch: its requests, and the {@link BatchContext} handed to `runBatch`.
 * The AbortController behind `signal` is created only if `runBatch` reads it.
 */
export class Batch<I, O> implements BatchContext, FinishedBatch {
  /** Requests of this batch still waiting for its result. */
  live: number;
  /** The subscription to an Observable `runBatch` returned, to cancel it when nobody waits. */
  inner: Subscription | undefined = undefined;
  /** Set once the batch's result was handled; later results are ignored. */
  done = false;
  /** When `runBatch` was called and when its result came back, as engine ticks. */
  startedAt = 0;
  finishedAt = 0;
  outcome: BatchReport['outcome'] = 'succeeded';
  /** The batch's total weight (its size without `weigh`); set when it is cut. */
  weight = 0;
  /** Result slots that held a promise and have not settled yet (the batch keeps its slot meanwhile). */
  lateSlots = 0;
  /** Those promises by position, to tell one that its caller has gone. */
  late: (LateResult<O> | undefined)[] | undefined = undefined;
  private cachedReport: BatchReport | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  private abortReason: unknown = undefined;
  private aborted = false;

  constructor(
    readonly batchId: number,
    readonly requests: EngineRequest<I, O>[],
    readonly reason: DispatchReason,
    readonly partition: string | undefined,
    /** The deadline scheduler's reading when the engine started: request deadlines count from it. */
    private readonly deadlineEpoch: number,
  ) {
    this.live = requests.length;
  }

  /** For each input, its caller's `context`. Built when read. */
  get contexts(): unknown[] {
    const rs = this.requests;
    const out = new Array<unknown>(rs.length);
    for (let i = 0; i < rs.length; i++) out[i] = rs[i].extras?.context;
    return out;
  }

  /** For each input, its caller's priority. Built when read. */
  get priorities(): readonly number[] {
    const rs = this.requests;
    const out = new Array<number>(rs.length);
    for (let i = 0; i < rs.length; i++) out[i] = rs[i].extras?.priority ?? 0;
    return out;
  }

  /** For each input, when its caller gives up (scheduler clock, ms), or `Infinity`. Built when read. */
  get deadlines(): readonly number[] {
    return this.deadlinesOf(this.requests);
  }

  /** For each of `rs`, when its caller gives up (scheduler clock, ms), or `Infinity`. */
  deadlinesOf(rs: readonly EngineRequest<I, O>[]): readonly number[] {
    const out = new Array<number>(rs.length);
    for (let i = 0; i < rs.length; i++) {
      const deadline = rs[i].extras?.deadline ?? 0;
      out[i] = deadline > 0 ? this.deadlineEpoch + deadline : Infinity;
    }
    return out;
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

  /**
   * Describes the finished batch for stats. Built on first use and kept: a frozen report with
   * every request's queue wait costs more than the batch bookkeeping itself, so it is made
   * only when someone reads the stats.
   */
  report(): BatchReport {
    if (this.cachedReport !== undefined) return this.cachedReport;
    const requests = this.requests;
    const waits = new Array<number>(requests.length);
    for (let i = 0; i < waits.length; i++) waits[i] = (this.startedAt - requests[i].enqueuedAt) | 0;
    this.cachedReport = Object.freeze({
      batchId: this.batchId,
      size: requests.length,
      reason: this.reason,
      partition: this.partition,
      outcome: this.outcome,
      durationMs: (this.finishedAt - this.startedAt) | 0,
      queueWaitMs: Object.freeze(waits),
      weight: this.weight,
      contexts: Object.freeze(this.contexts),
    });
    return this.cachedReport;
  }

  /** The inputs in the order results must come back in. */
  inputs(): I[] {
    const rs = this.requests;
    const out = new Array<I>(rs.length);
    for (let i = 0; i < rs.length; i++) out[i] = rs[i].input;
    return out;
  }
}
