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
  /** Requests in arrival order; entries before {@link head} are gone. */
  private items: EngineRequest<I, O>[] = [];
  private head = 0;
  /** Requests still waiting (not settled, not taken into a batch). */
  live = 0;
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
    this.items.push(request);
    this.live++;
  }

  /** A request left the queue without being taken (aborted, timed out, rejected on stop). */
  removed(): void {
    this.live--;
    if (this.live === 0) this.reset();
  }

  /** The oldest request still waiting. */
  oldest(): EngineRequest<I, O> | undefined {
    const items = this.items;
    while (this.head < items.length && items[this.head].state >= SUCCEEDED) this.head++;
    return items[this.head];
  }

  /** Takes up to `max` of the oldest waiting requests, in arrival order. */
  take(max: number): EngineRequest<I, O>[] {
    const items = this.items;
    const count = Math.min(max, this.live);
    const taken = new Array<EngineRequest<I, O>>(count);
    let i = this.head;
    let n = 0;
    while (n < count) {
      const r = items[i++];
      if (r.state < SUCCEEDED) taken[n++] = r;
    }
    this.head = i;
    this.live -= count;
    if (this.live === 0) this.reset();
    else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    return taken;
  }

  private reset(): void {
    this.items = [];
    this.head = 0;
  }
}
