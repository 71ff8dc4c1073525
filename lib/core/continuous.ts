import { Subscription } from 'rxjs';
import { BatchResultError } from '../errors/BatchResultError.js';
import { describeValue } from '../errors/describe.js';
import type { Batch } from './batch.js';
import { RUNNING, type EngineRequest } from './request.js';
import type { StepContext } from './steps.js';
import { applySlot, arrayLikeLength, isThenable, stepScheduler, type ContinuousModel, type StreamHost } from './streamRunner.js';

/**
 * Continuous (iteration-level) batching, as in Orca and vLLM: one engine batch is a loop that
 * advances its active items one step at a time. Before each step it
 *
 * 1. retires items that are no longer running (finished by the model, failed, or their caller
 *    left: aborted, timed out, unsubscribed), releasing their states;
 * 2. admits waiting requests of its partition into the free places, up to `maxBatchSize`
 *    (best-ranked first, as the engine would cut a batch), making their states with `init`;
 * 3. ends, freeing its slot, when nothing is active and nobody waits.
 *
 * The engine keeps every other rule: the loop holds one of `maxConcurrentBatches` slots;
 * windows decide when the first loop starts; deadlines and aborts settle callers at any
 * moment (their item is retired before the next step); when every caller has gone the engine
 * abandons the loop (its signal aborts) and starts another for whoever waits; a non-draining
 * `stop()` rejects the queue, so the loop admits nobody and ends when its items are finished.
 *
 * @example
 * ```ts
 * batch.inner = runContinuous(name, model, batch, host);
 * ```
 */
export function runContinuous<I, O>(name: string, model: ContinuousModel<I>, batch: Batch<I, O>, host: StreamHost<I, O>): Subscription {
  const loop = new Loop(name, model, batch, host);
  loop.join(batch.requests);
  loop.next();
  return loop.subscription;
}

interface Item<I, O> {
  readonly request: EngineRequest<I, O>;
  readonly state: unknown;
}

class Loop<I, O> {
  readonly subscription = new Subscription(() => this.close());
  private active: Item<I, O>[] = [];
  private stopped = false;
  private steps = 0;
  private joined = 0;

  constructor(
    private readonly name: string,
    private readonly model: ContinuousModel<I>,
    private readonly batch: Batch<I, O>,
    private readonly host: StreamHost<I, O>,
  ) {}

  private get over(): boolean {
    return this.stopped || this.batch.done;
  }

  /** New members: each gets its state from `init`, or fails alone if `init` throws. */
  join(requests: readonly EngineRequest<I, O>[]): void {
    for (const request of requests) {
      if (request.state !== RUNNING) continue;
      let state: unknown;
      try {
        state = this.model.init(request.input);
      } catch (error) {
        this.host.itemFinished(this.batch, request, true, error);
        continue;
      }
      this.active.push({ request, state });
      this.joined++;
    }
  }

  /** Between two steps: retire, admit, then take the next step (or end). */
  next(): void {
    if (this.over) return;
    this.retire();
    const free = this.host.config.maxBatchSize - this.active.length;
    if (free > 0) {
      const admitted = this.host.admitInto(this.batch, free);
      this.model.counters.admitted += admitted.length;
      this.join(admitted);
      this.retire(); // init may have failed some
    }
    if (this.over) return;
    if (this.active.length === 0) return this.end([], false, undefined);
    const members = this.active.slice();
    const ctx = new Context(this.batch, members, this.steps++, this.joined);
    this.joined = 0;
    let result: unknown;
    try {
      result = this.model.runStep(members.map(stateOf), ctx as never);
    } catch (error) {
      return this.end(members, true, error);
    }
    try {
      if (isThenable(result)) {
        result.then(
          (slots) => {
            if (this.over) return;
            this.apply(members, slots);
            this.next();
          },
          (error: unknown) => {
            if (!this.over) this.end(members, true, error);
          },
        );
        return;
      }
    } catch (error) {
      return this.end(members, true, error);
    }
    this.apply(members, result);
    if (this.over) return;
    // A synchronous step: the next one waits for a turn of the scheduler, so timers and I/O
    // (new requests, aborts, deadlines) get to run between steps.
    this.subscription.add(stepScheduler(this.host.config as never).schedule(() => this.next()));
  }

  private apply(members: readonly Item<I, O>[], slots: unknown): void {
    let length: number | undefined;
    try {
      length = arrayLikeLength(slots);
    } catch (error) {
      return this.end(members, true, error);
    }
    if (length !== members.length) {
      return this.end(members, true, new BatchResultError(this.name, members.length, length, slots, length === undefined
        ? `runStep must return a step with one slot per state, and it returned ${describeValue(slots)}`
        : `runStep returned ${length} slots for ${members.length} states (slots are matched to states by position)`));
    }
    this.model.counters.steps++;
    const s = slots as ArrayLike<unknown>;
    for (let i = 0; i < members.length; i++) {
      const request = members[i].request;
      if (request.state !== RUNNING) continue;
      let slot: unknown;
      try {
        slot = s[i];
      } catch (error) {
        slot = error instanceof Error ? error : new Error(String(error));
      }
      applySlot(this.host, this.batch, request, slot, this.model.counters);
      if (this.over) return;
    }
  }

  /** Drops items whose request is no longer running, releasing their states. */
  private retire(): void {
    let kept = 0;
    const active = this.active;
    for (let i = 0; i < active.length; i++) {
      const item = active[i];
      if (item.request.state === RUNNING) active[kept++] = item;
      else this.release(item.state);
    }
    active.length = kept;
  }

  /** The loop is over: callers still going settle (with their output, or `error`), and the slot frees. */
  private end(members: readonly Item<I, O>[], failed: boolean, error: unknown): void {
    if (this.over) return;
    const still = (failed ? members : this.active).map((item) => item.request);
    this.host.streamEnded(this.batch, still, failed, error);
    this.close();
  }

  /** Stopped by the engine (over or abandoned) or by itself: every state still held is released, once. */
  private close(): void {
    if (this.stopped) return;
    this.stopped = true;
    const active = this.active;
    this.active = [];
    for (const item of active) this.release(item.state);
  }

  private release(state: unknown): void {
    const release = this.model.release;
    if (release === undefined) return;
    try {
      release(state);
    } catch {
      // a failing release must not break the loop or settlement
    }
  }
}

function stateOf(item: Item<unknown, unknown>): unknown {
  return item.state;
}

/** A step's {@link StepContext}: per-item fields are built when read. */
class Context<I, O> implements StepContext {
  constructor(
    private readonly batch: Batch<I, O>,
    private readonly members: readonly Item<I, O>[],
    readonly step: number,
    readonly joined: number,
  ) {}

  get batchId(): number {
    return this.batch.batchId;
  }

  get size(): number {
    return this.members.length;
  }

  get partition(): string | undefined {
    return this.batch.partition;
  }

  get signal(): AbortSignal {
    return this.batch.signal;
  }

  get contexts(): readonly unknown[] {
    return this.members.map((item) => item.request.extras?.context);
  }

  get deadlines(): readonly number[] {
    return this.batch.deadlinesOf(this.members.map((item) => item.request));
  }
}
