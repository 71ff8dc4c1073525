import type { Subscription } from 'rxjs';
import type { DispatchReason } from '../types';
import { SUCCEEDED, type EngineRequest } from './request';

/**
 * The FIFO queue of one `partitionBy` key, with its batch window.
 *
 * Cancelled requests are not spliced out (that would be O(n)); they are marked settled and
 * skipped when a batch is taken, while {@link live} counts the requests still waiting.
 */
export class Partition<I, O> {
  /**
   * Requests in arrival order, linked through `EngineRequest.nextInQueue`: pushing never copies or
   * grows an array, so a backlog of 100k requests costs no reallocation garbage.
   */
  private first: EngineRequest<I, O> | undefined = undefined;
  private last: EngineRequest<I, O> | undefined = undefined;
  /** Requests still waiting (not settled, not taken into a batch). */
  live = 0;
  /** Their total weight (`weigh`); 0 without `weigh`. */
  liveWeight = 0;
  /** The open window's timer: at most one per partition, only while requests wait. */
  timer: Subscription | null = null;
  /** Why this partition may dispatch a batch smaller than `maxBatchSize`, once a slot is free. */
  due: DispatchReason | null = null;
  /** Requests with an id up to this one were queued when `flush()` was called. */
  flushThrough = 0;

  constructor(
    readonly key: string | undefined,
    /** Told when this partition's window timer fires. */
    readonly owner: { windowExpired(partition: Partition<I, O>): void },
  ) {}

  push(request: EngineRequest<I, O>): void {
    if (this.last === undefined) this.first = request;
    else this.last.nextInQueue = request;
    this.last = request;
    this.live++;
    this.liveWeight += weightOf(request);
  }

  /** A request left the queue without being taken (aborted, timed out, rejected on stop). */
  removed(request: EngineRequest<I, O>): void {
    this.live--;
    this.liveWeight -= weightOf(request);
    if (this.live === 0) this.reset();
  }

  /** The oldest request still waiting. */
  oldest(): EngineRequest<I, O> | undefined {
    let r = this.first;
    while (r !== undefined && r.state >= SUCCEEDED) r = this.unlinkFirst(r);
    return r;
  }

  /**
   * Takes up to `max` of the oldest waiting requests, in arrival order, and, with a budget,
   * only while the next one fits in it (never skipping ahead: the first that does not fit
   * starts the next batch). `takenWeight` is then the batch's weight.
   */
  take(max: number, budget = Infinity): EngineRequest<I, O>[] {
    const count = Math.min(max, this.live);
    const taken = new Array<EngineRequest<I, O>>(count);
    let n = 0;
    let weight = 0;
    let r = this.first;
    // `live` counts at least `count` waiting requests from the first on, so `r` is never undefined here.
    while (n < count) {
      if (r!.state < SUCCEEDED) {
        const w = weightOf(r!);
        if (n > 0 && weight + w > budget) break; // it starts the next batch: leave it first
        taken[n++] = r!;
        weight += w;
      }
      r = this.unlinkFirst(r!);
    }
    if (n < count) taken.length = n;
    this.takenWeight = weight;
    this.live -= n;
    this.liveWeight -= weight;
    if (this.live === 0) this.reset();
    return taken;
  }

  /** The weight of what the last {@link take} returned. */
  takenWeight = 0;

  /** Whether a batch cut now would be as full as it can get: `max` requests, or the weight budget reached. */
  isFull(max: number, budget: number): boolean {
    return this.live >= max || this.liveWeight >= budget;
  }

  /** Drops `r` (the first) from the list and returns the new first. */
  private unlinkFirst(r: EngineRequest<I, O>): EngineRequest<I, O> | undefined {
    const next = r.nextInQueue;
    r.nextInQueue = undefined;
    this.first = next;
    if (next === undefined) this.last = undefined;
    return next;
  }

  private reset(): void {
    let r = this.first;
    while (r !== undefined) r = this.unlinkFirst(r); // settled leftovers: let them go
    this.liveWeight = 0;
  }
}

function weightOf(request: EngineRequest<unknown, unknown>): number {
  const extras = request.extras;
  return extras === undefined ? 0 : extras.weight;
}
