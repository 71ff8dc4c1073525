import type { Subscription } from 'rxjs';
import type { DispatchReason } from '../types.js';
import { SUCCEEDED, type EngineRequest } from './request.js';

/**
 * The queue of one `partitionBy` key, with its batch window.
 *
 * Requests wait in one FIFO lane per priority level (one lane, priority 0, until a call asks
 * for another). A batch takes the request that ranks first, again and again: higher priority
 * first, and a waiting request gains one level per `agingMs` it has waited, so it ranks by
 * `arrival − priority × agingMs` (earlier first, then arrival order). Within a lane arrival order
 * is rank order, so only the lanes' heads are ever compared.
 *
 * Cancelled requests are not spliced out (that would be O(n)); they are marked settled and
 * skipped when a batch is taken, while {@link live} counts the requests still waiting.
 */
export class Partition<I, O> {
  /** The lanes, highest priority first; `lanes[k]` for priority 0 always exists. */
  private lanes: Lane<I, O>[];
  /** The priority-0 lane: every call that gives no priority. */
  private readonly plain: Lane<I, O> = new Lane<I, O>(0);
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
  ) {
    this.lanes = [this.plain];
  }

  push(request: EngineRequest<I, O>): void {
    const extras = request.extras;
    (extras === undefined || extras.priority === 0 ? this.plain : this.laneFor(extras.priority)).push(request);
    this.live++;
    this.liveWeight += weightOf(request);
  }

  /** A request left the queue without being taken (aborted, timed out, rejected on stop). */
  removed(request: EngineRequest<I, O>): void {
    this.live--;
    this.liveWeight -= weightOf(request);
    if (this.live === 0) this.reset();
  }

  /** The request that arrived first among those still waiting (the window counts from it). */
  oldest(): EngineRequest<I, O> | undefined {
    const lanes = this.lanes;
    if (lanes.length === 1) return this.plain.head();
    let oldest: EngineRequest<I, O> | undefined;
    for (let i = 0; i < lanes.length; i++) {
      const head = lanes[i].head();
      if (head !== undefined && (oldest === undefined || arrivedBefore(head, oldest))) oldest = head;
    }
    return oldest;
  }

  /**
   * Takes up to `max` waiting requests, best ranked first (see the class comment; plain FIFO
   * without priorities), and, with a budget, only while the next one fits in it (never skipping
   * ahead: the first that does not fit starts the next batch). `takenWeight` is then the batch's weight.
   * A request with a `batchCap` (a redelivered one) caps the batch it is in at that many
   * inputs: the batch ends before it when it would not fit, or once the cap is reached.
   */
  take(max: number, budget = Infinity, agingMs = Infinity): EngineRequest<I, O>[] {
    const count = Math.min(max, this.live);
    const taken = new Array<EngineRequest<I, O>>(count);
    let n = 0;
    let weight = 0;
    let cap = count;
    const single = this.lanes.length === 1;
    // `live` counts at least `count` waiting requests, so a lane always has a head here.
    while (n < cap) {
      const lane = single ? this.plain : this.firstRanked(agingMs);
      const r = lane.head()!;
      const w = weightOf(r);
      const c = capOf(r);
      if (n > 0 && (weight + w > budget || n >= c)) break; // it starts the next batch: leave it first
      taken[n++] = r;
      weight += w;
      if (c < cap) cap = c;
      lane.shift();
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

  /** The lane whose head ranks first. */
  private firstRanked(agingMs: number): Lane<I, O> {
    const lanes = this.lanes;
    let best: Lane<I, O> | undefined;
    let bestHead: EngineRequest<I, O> | undefined;
    for (let i = 0; i < lanes.length; i++) {
      const head = lanes[i].head();
      if (head === undefined) continue;
      if (bestHead === undefined || ranksBefore(head, lanes[i].priority, bestHead, best!.priority, agingMs)) {
        best = lanes[i];
        bestHead = head;
      }
    }
    return best!;
  }

  private laneFor(priority: number): Lane<I, O> {
    const lanes = this.lanes;
    let i = 0;
    while (i < lanes.length && lanes[i].priority > priority) i++;
    if (i < lanes.length && lanes[i].priority === priority) return lanes[i];
    const lane = new Lane<I, O>(priority);
    lanes.splice(i, 0, lane);
    return lane;
  }

  private reset(): void {
    for (const lane of this.lanes) lane.clear(); // settled leftovers: let them go
    this.lanes = [this.plain];
    this.liveWeight = 0;
  }
}

/** One priority level's requests in arrival order, linked through `EngineRequest.nextInQueue` (no array to regrow). */
class Lane<I, O> {
  private first: EngineRequest<I, O> | undefined = undefined;
  private last: EngineRequest<I, O> | undefined = undefined;

  constructor(readonly priority: number) {}

  push(request: EngineRequest<I, O>): void {
    if (this.last === undefined) this.first = request;
    else this.last.nextInQueue = request;
    this.last = request;
  }

  /** The first request still waiting, dropping settled ones ahead of it. */
  head(): EngineRequest<I, O> | undefined {
    let r = this.first;
    while (r !== undefined && r.state >= SUCCEEDED) r = this.shift();
    return r;
  }

  /** Drops the first request from the lane and returns the new first. */
  shift(): EngineRequest<I, O> | undefined {
    const r = this.first!;
    const next = r.nextInQueue;
    r.nextInQueue = undefined;
    this.first = next;
    if (next === undefined) this.last = undefined;
    return next;
  }

  clear(): void {
    while (this.first !== undefined) this.shift();
  }
}

/**
 * Whether `a` (priority `pa`) is served before `b` (priority `pb`): by `arrival − priority × agingMs`,
 * then arrival order. Arrival ticks are compared by their difference, right across the clock's wrap.
 */
function ranksBefore(a: EngineRequest<unknown, unknown>, pa: number, b: EngineRequest<unknown, unknown>, pb: number, agingMs: number): boolean {
  if (pa === pb) return a.id < b.id;
  if (agingMs === Infinity) return pa > pb;
  const later = (a.enqueuedAt - b.enqueuedAt) | 0; // how much later `a` arrived
  const credit = (pa - pb) * agingMs; // what its priority is worth, in waiting time
  return credit > later || (credit === later && a.id < b.id);
}

function arrivedBefore(a: EngineRequest<unknown, unknown>, b: EngineRequest<unknown, unknown>): boolean {
  const later = (a.enqueuedAt - b.enqueuedAt) | 0;
  return later < 0 || (later === 0 && a.id < b.id);
}

function capOf(request: EngineRequest<unknown, unknown>): number {
  const extras = request.extras;
  return extras === undefined ? Infinity : extras.batchCap;
}

function weightOf(request: EngineRequest<unknown, unknown>): number {
  const extras = request.extras;
  return extras === undefined ? 0 : extras.weight;
}
