import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { SUCCEEDED, type EngineRequest } from './request.js';

/**
 * Request deadlines with one timer for all of them: a binary min-heap ordered by deadline,
 * and a single scheduled action for the earliest one. Settled requests are not removed
 * eagerly; they are skipped when popped, and the heap is compacted when they outnumber the
 * live ones. With no live deadline left the timer is cancelled, so an idle batcher holds none.
 */
export class DeadlineQueue<I, O> {
  private heap: EngineRequest<I, O>[] = [];
  private live = 0;
  private timer: Subscription | null = null;
  private armedFor = Infinity;
  private firing = false;
  /** The timer was armed for `armedFor` itself, not for an intermediate step towards it. */
  private exact = true;

  constructor(
    private readonly scheduler: SchedulerLike,
    /** The clock deadlines are measured on (ms since the engine started). */
    private readonly now: () => number,
    private readonly expire: (request: EngineRequest<I, O>) => void,
  ) {}

  add(request: EngineRequest<I, O>): void {
    const heap = this.heap;
    heap.push(request);
    siftUp(heap, heap.length - 1);
    this.live++;
    const deadline = deadlineOf(request);
    if (deadline < this.armedFor) this.arm(deadline);
  }

  /** A request with a deadline settled some other way. */
  settled(): void {
    this.live--;
    if (this.live === 0) this.clear();
    else if (!this.firing && this.heap.length > 64 && this.heap.length > 4 * this.live) this.compact();
  }

  clear(): void {
    this.timer?.unsubscribe();
    this.timer = null;
    this.armedFor = Infinity;
    this.heap = [];
    this.live = 0;
  }

  private arm(deadline: number): void {
    this.timer?.unsubscribe();
    this.armedFor = deadline;
    let delay = Math.max(0, deadline - this.now());
    // Node runs a timer longer than 2^31-1 ms after 1 ms (with a TimeoutOverflowWarning). A
    // farther deadline is reached in steps: wake at the limit, find nothing due, re-arm.
    this.exact = delay <= MAX_TIMER_MS;
    if (!this.exact) delay = MAX_TIMER_MS;
    this.timer = this.scheduler.schedule(onDeadlineTimer as (this: SchedulerAction<unknown>, s?: unknown) => void, delay, this);
  }

  /** Runs on the timer: expires everything due, then re-arms for the next deadline. */
  fire(): void {
    // The timer was armed for `armedFor`; trust it even if the clock reads a little earlier.
    // (A Node timer counts from the event loop's cached time and can fire before Date.now()
    // reaches the deadline; re-arming then let a late batch result slip past its deadline.)
    // Not so for an intermediate wake-up on the way to a deadline beyond the timer limit.
    const now = this.exact ? Math.max(this.now(), this.armedFor) : this.now();
    this.timer = null;
    this.armedFor = Infinity;
    this.firing = true;
    try {
      // expire() settles the request, which calls settled(), which may clear the heap:
      // read this.heap afresh on every step.
      while (this.heap.length > 0 && deadlineOf(this.heap[0]) <= now) {
        const r = popMin(this.heap);
        if (r.state < SUCCEEDED) this.expire(r);
      }
    } finally {
      this.firing = false;
    }
    const heap = this.heap;
    while (heap.length > 0 && heap[0].state >= SUCCEEDED) popMin(heap);
    if (heap.length > 0 && this.timer === null) this.arm(deadlineOf(heap[0]));
  }

  private compact(): void {
    const kept = this.heap.filter((r) => r.state < SUCCEEDED);
    for (let i = (kept.length >> 1) - 1; i >= 0; i--) siftDown(kept, i);
    this.heap = kept;
  }
}

/** The longest delay a Node (or browser) timer honours: 2^31-1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// Private: the scheduler calls this with the queue as its state, so no closure is made per arm.
function onDeadlineTimer(this: unknown, queue?: DeadlineQueue<unknown, unknown>): void {
  queue!.fire();
}

type Entry = EngineRequest<unknown, unknown>;

function deadlineOf(r: Entry): number {
  return r.extras!.deadline;
}

function siftUp<T extends Entry>(heap: T[], i: number): void {
  const item = heap[i];
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (deadlineOf(heap[parent]) <= deadlineOf(item)) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = item;
}

function siftDown<T extends Entry>(heap: T[], i: number): void {
  const n = heap.length;
  const item = heap[i];
  for (;;) {
    let child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && deadlineOf(heap[child + 1]) < deadlineOf(heap[child])) child++;
    if (deadlineOf(heap[child]) >= deadlineOf(item)) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = item;
}

function popMin<T extends Entry>(heap: T[]): T {
  const top = heap[0];
  const last = heap.pop()!;
  if (heap.length > 0) {
    heap[0] = last;
    siftDown(heap, 0);
  }
  return top;
}
