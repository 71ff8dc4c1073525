import type { Observable, SchedulerAction } from 'rxjs';
import { BatcherStoppedError } from '../errors/BatcherStoppedError.js';
import { QueueFullError } from '../errors/QueueFullError.js';
import { RequestTimeoutError } from '../errors/RequestTimeoutError.js';
import { describeValue, prefix } from '../errors/describe.js';
import type { BatchConfig } from './config.js';
import type { BatchSettings, DispatchReason } from '../types.js';
import { Batch } from './batch.js';
import { Counters } from './counters.js';
import { DeadlineQueue } from './deadlines.js';
import { Dedupe, dedupeRule } from './dedupe.js';
import { applyDefaults, Refused } from './defaults.js';
import { invokeRunBatch } from './invokeRunBatch.js';
import { TargetController } from './latencyTarget.js';
import { Partition } from './partition.js';
import { CALLER_GONE, FAILED_WITH_CALL, isLateResult, type LateResult } from './lateResult.js';
import { bisect, canBisect, wasBisected } from './bisect.js';
import {
  BATCH_FAILED,
  CANCELLED,
  FAILED,
  QUEUED,
  REJECTED,
  RequestExtras,
  RUNNING,
  SUCCEEDED,
  TIMED_OUT,
  type EngineRequest,
  type SettledState,
} from './request.js';
import { LeanSubject } from '../util/LeanSubject.js';
import { ArrivalClock } from './arrivalClock.js';
import { runContinuous } from './continuous.js';
import { outputOf, runStepsBatch, type StreamHost } from './streamRunner.js';

const OPEN = 0;
const DRAINING = 1;
const STOPPING = 2;
const STOPPED = 3;

/**
 * The batching engine behind both {@link Batcher} and {@link batchMap}: the timing, sealing
 * and concurrency rules live here and nowhere else.
 *
 * It keeps the design card's pipeline, with its traps fixed:
 *
 * ```
 * requests ─▶ partition queues ─▶ sealed batches ─▶ execute (up to maxConcurrentBatches at once) ─▶ settled (Subject)
 *             (window per queue)    cut late, when a slot frees                                      routed by request id
 * ```
 *
 * - **Windows, not ticks.** `bufferTime(d, null, n)` runs a timer from subscription and emits
 *   `[]` on every idle tick. Here a window opens when a request arrives at an empty queue (one
 *   timer, started at that first request) and closes with it: an idle engine holds no timer.
 * - **Late sealing.** `bufferTime` seals a batch when its timer fires even if every
 *   `concatMap` slot is busy, so a busy model receives a train of tiny batches. Here a window
 *   that expires while all slots are busy only marks its queue *due*; the batch is cut when a
 *   slot frees, and then takes up to `maxBatchSize` of the oldest waiting requests. Under
 *   sustained overload every batch is full. A queue that reaches `maxBatchSize` is due at once
 *   (unless `fullWaitsForWindow`: then it waits for its window and is cut into full batches).
 * - **Failures stay inside the batch.** `runBatch` throwing, rejecting, erroring or returning
 *   the wrong shape settles that batch's callers; the pipeline keeps serving.
 * - **O(1) routing.** Each settled request is emitted once on `settled$`; the request object
 *   itself knows how to reach its caller, so one subscriber routes every result without a
 *   per-caller filter or a lookup. A face may ask the engine to make that call itself
 *   (`routeToCallers`, as `Batcher` does): `settled$` then carries each settlement only while
 *   someone subscribes (`results$`), so an unobserved batcher allocates nothing per result.
 * - **Slots, not a pipeline per batch.** The card's `concatMap` (`mergeMap` at
 *   `maxConcurrentBatches`) becomes the `running` set that `pump()` checks before it cuts a
 *   batch: the same limit, without an Observable and a subscriber per batch.
 * - **Shared inputs.** With `dedupeBy`, what waits in a queue and runs in a batch is a shared
 *   slot standing for the calls with its key (lib/core/dedupe.ts); each call still settles on
 *   its own, through `settle()` like any other.
 */
export class BatchEngine<I, O> implements StreamHost<I, O> {
  /** Live counters, for stats. */
  readonly counters = new Counters();
  /** Every request, exactly once, when it settles. Completes when the engine has stopped. */
  readonly settled$: Observable<EngineRequest<I, O>>;

  private readonly settled = new LeanSubject<EngineRequest<I, O>>();
  private readonly deadlines: DeadlineQueue<I, O>;
  /** `dedupeBy`'s shared slots; undefined without `dedupeBy` (the engine's path is then as before). */
  private readonly dedupe: Dedupe<I, O> | undefined;
  /** The only partition when there is no `partitionBy`. */
  private readonly single: Partition<I, O>;
  private readonly partitions = new Map<string | undefined, Partition<I, O>>();
  /** Partitions that may dispatch as soon as a slot frees, oldest first. */
  private readonly ready = new Set<Partition<I, O>>();
  private readonly running = new Set<Batch<I, O>>();
  private phase = OPEN;
  private lastRequestId = 0;
  private lastBatchId = 0;
  private pumping = false;
  private pumpAgain = false;
  private settledClosed = false;
  private stopped: Promise<void> | undefined;
  /** Whole ms since the engine started, on the window scheduler, wrapping at 2^31 (see {@link elapsed}). */
  private readonly clock: () => number;
  /** The clock as read for arrivals: once per run of them (lib/core/arrivalClock.ts). */
  private readonly arrivals: ArrivalClock;
  /** ms since the engine started, on the deadline scheduler. */
  private readonly deadlineClock: () => number;
  private resolveStopped: (() => void) | undefined;

  private readonly onChange: () => void;
  private readonly onSlotFreed: () => void;
  private readonly onStopped: () => void;
  /** See {@link EngineHooks.routeToCallers}. */
  private readonly routes: boolean;
  /** See {@link EngineHooks.deliver}. */
  private readonly deliverPlain: ((request: EngineRequest<I, O>) => void) | undefined;
  private readonly deadlineEpoch: number;
  /** Chooses windows under `latencyTarget`; made with the first target and kept (what it learned of the model stays true). */
  private target: TargetController | undefined = undefined;

  /** The batching rules in force; {@link reconfigure} replaces them. */
  get config(): BatchConfig<I, O> {
    return this.rules;
  }

  /** The configurable part of the rules in force, frozen (one object per configuration, for stats). */
  get settings(): BatchSettings {
    const c = this.rules;
    return (this.cachedSettings ??= Object.freeze({
      maxBatchSize: c.maxBatchSize,
      maxDelayMs: c.maxDelayMs,
      maxConcurrentBatches: c.maxConcurrentBatches,
      maxQueueSize: c.maxQueueSize,
      maxBatchWeight: c.maxBatchWeight,
      agingMs: c.agingMs,
      ...(c.latencyTarget !== undefined ? { latencyTarget: c.latencyTarget } : {}),
      ...(c.isolateFailures === 'bisect' ? { isolateFailures: c.isolateFailures } : {}),
    }));
  }

  private cachedSettings: BatchSettings | undefined;

  constructor(
    private rules: BatchConfig<I, O>,
    hooks: EngineHooks = {},
  ) {
    const config = rules;
    this.onChange = hooks.changed ?? noop;
    this.onSlotFreed = hooks.slotFreed ?? noop;
    this.onStopped = hooks.stopped ?? noop;
    this.routes = hooks.routeToCallers === true;
    this.deliverPlain = hooks.deliver as ((request: EngineRequest<I, O>) => void) | undefined;
    this.settled$ = this.settled.asObservable();
    const windowScheduler = config.windowScheduler;
    const windowEpoch = windowScheduler.now();
    const deadlineEpoch = (this.deadlineEpoch = config.deadlineScheduler.now());
    // `| 0` keeps ticks small integers (Smis), so V8 stores them in the request object itself
    // instead of boxing a heap number per request. Ticks wrap after 2^31 ms (~24.8 days); every
    // use takes a difference `(a - b) | 0`, which stays right across the wrap.
    this.clock = () => (windowScheduler.now() - windowEpoch) | 0;
    this.arrivals = new ArrivalClock(windowScheduler, this.clock);
    this.deadlineClock = () => config.deadlineScheduler.now() - deadlineEpoch;
    this.deadlines = new DeadlineQueue<I, O>(config.deadlineScheduler, this.deadlineClock, (r) => this.expire(r));
    const share = config.share ?? (config.dedupeBy === undefined ? undefined : dedupeRule<I, O>(config.name, config.dedupeBy));
    this.dedupe = share === undefined ? undefined : new Dedupe<I, O>(share, {
      counters: this.counters,
      settle: (request, outcome, value, reason) => this.settle(request, outcome, value, reason),
      vacate: (request, previous, place, counted) => this.vacate(request, previous, place, counted),
      release: (request) => this.release(request),
      leftBatch: (batch, request) => this.leftBatch(batch, request),
    });
    this.single = new Partition<I, O>(undefined, this);
    this.partitions.set(undefined, this.single);
    this.useTarget(config);
  }

  /** Makes the latency-target controller when a target is first in force. */
  private useTarget(config: BatchConfig<I, O>): void {
    if (config.latencyTarget === undefined || this.target !== undefined) return;
    const view = { clock: this.clock, running: this.running, counters: this.counters, rules: () => this.rules };
    this.target = this.counters.latencyTarget = new TargetController(view);
  }

  /**
   * Applies new rules (already validated by the face) from the next batch formed. Nothing
   * waiting is lost or reordered: each queue is looked at afresh (full now? its window, from its
   * oldest request, under the new `maxDelayMs`), and batches running keep their slots.
   */
  reconfigure(config: BatchConfig<I, O>): void {
    this.rules = config;
    this.cachedSettings = undefined;
    this.useTarget(config);
    if (this.phase === STOPPED) return;
    // A new maxConcurrentBatches needs nothing more: pump() compares the batches running with it,
    // so running batches keep their slots and the next one is cut under the new limit.
    for (const partition of [...this.partitions.values()]) {
      if (partition.live === 0) continue;
      this.closeWindow(partition);
      this.reconsider(partition); // which also keeps a drain or a flush in progress due
    }
    this.pump();
    this.onChange();
  }

  /**
   * Admits a request: rejects it at once (stopped, queue full, bad input, already aborted) or
   * queues it. A call's own signal and timeout come in `request.extras`; the batcher's
   * `timeoutMs` applies here to every request that has none of its own.
   */
  submit(request: EngineRequest<I, O>): void {
    const config = this.config;
    const counters = this.counters;
    request.id = ++this.lastRequestId;
    counters.submitted++;
    if (this.phase !== OPEN) return this.settleAlone(request, REJECTED, new BatcherStoppedError(config.name));
    if ((config.limitCountsRunning ? counters.queued + counters.inFlight : counters.queued) >= config.maxQueueSize) {
      return this.settleAlone(request, REJECTED, new QueueFullError(config.name, config.maxQueueSize));
    }
    let extras = request.extras;
    if (config.timeoutMs !== Infinity) {
      if (extras === undefined) extras = request.extras = new RequestExtras(undefined, config.timeoutMs);
      else if (extras.timeoutMs === 0) extras.timeoutMs = config.timeoutMs;
    }
    const signal = extras?.signal;
    if (signal !== undefined) {
      if (signal.aborted) return this.settleAlone(request, CANCELLED, signal.reason);
      extras!.onAbort = () => this.settleAlone(request, CANCELLED, signal.reason);
      signal.addEventListener('abort', extras!.onAbort);
    }
    if (config.defaults !== undefined) {
      const filled = applyDefaults(config.name, request.input, config.defaults, config.defaultKeys);
      if (filled instanceof Refused) return this.settleAlone(request, REJECTED, filled.error);
      request.input = filled;
    }
    let partition = this.single;
    if (config.partitionBy !== undefined) {
      const key = this.partitionKey(request);
      if (key instanceof Error) return this.settleAlone(request, REJECTED, key);
      partition = this.partitionFor(key);
    }
    if (config.weigh !== undefined) {
      const weight = this.weighOf(request);
      if (typeof weight !== 'number') return this.settleAlone(request, REJECTED, weight);
      if (extras === undefined) extras = request.extras = new RequestExtras(undefined, 0);
      extras.weight = weight;
    }
    let key: unknown = 0;
    if (this.dedupe !== undefined) {
      key = this.dedupe.keyOf(request);
      if (key instanceof Refused) return this.settleAlone(request, REJECTED, key.error);
    }

    request.place = partition;
    request.state = QUEUED;
    request.enqueuedAt = this.arrivals.tick();
    if (extras !== undefined && extras.timeoutMs > 0 && extras.timeoutMs !== Infinity) {
      extras.deadline = this.deadlineClock() + extras.timeoutMs;
      this.deadlines.add(request);
    }
    if (this.dedupe === undefined) partition.push(request);
    else {
      // The input's shared slot goes in the queue in its place, unless it joined one waiting or running.
      const slot = this.dedupe.attach(request, partition.key, key);
      if (slot === undefined) return;
      slot.place = partition;
      slot.state = QUEUED;
      partition.push(slot);
    }
    counters.queued++;
    if (partition.isFull(config.maxBatchSize, config.maxBatchWeight) && config.fullWaitsForWindow !== true) {
      // Full (or at its weight budget): due now, whatever its window says. (Beyond full it is
      // in `ready` already, and while every slot is busy there is nothing to pump: the
      // backlog waits, cheaply.)
      if (partition.live === config.maxBatchSize || config.weigh !== undefined) {
        this.closeWindow(partition);
        this.ready.add(partition);
      }
      if (this.running.size < config.maxConcurrentBatches) this.pump();
    } else if (partition.live === 1 && partition.due === null) {
      // The first request after idle opens the window: its timer starts now, at this request.
      this.openWindow(partition, config.latencyTarget === undefined ? config.maxDelayMs : this.windowLeft(partition, false));
    }
  }

  /**
   * How many more requests could go into batches right now: free slots times `maxBatchSize`,
   * less what already waits. A worker pulls this many from its broker, so requests it cannot
   * run soon stay in the broker for other workers (late sealing, across processes).
   */
  room(): number {
    const config = this.config;
    if (this.phase !== OPEN) return 0;
    const freeSlots = config.maxConcurrentBatches - this.running.size;
    if (freeSlots === Infinity) return Infinity;
    return freeSlots * config.maxBatchSize - this.waitingInputs();
  }

  /** Inputs waiting in queues: with shared inputs (`dedupeBy`), callers sharing a slot wait for one input. */
  waitingInputs(): number {
    if (this.dedupe === undefined) return this.counters.queued;
    let waiting = 0;
    for (const partition of this.partitions.values()) waiting += partition.live;
    return waiting;
  }

  /** Settles a request the facade refused before submitting (bad per-call options). */
  refuse(request: EngineRequest<I, O>, error: unknown): void {
    request.id = ++this.lastRequestId;
    this.counters.submitted++;
    this.settleAlone(request, REJECTED, error);
  }

  /** The caller went away (e.g. unsubscribed from `run$`): drop the request. */
  cancel(request: EngineRequest<I, O>, reason: unknown): void {
    this.settleAlone(request, CANCELLED, reason);
  }

  /** Dispatches everything queued now, without waiting for windows (slots permitting). */
  flush(): void {
    if (this.phase !== OPEN && this.phase !== DRAINING) return;
    for (const partition of this.partitions.values()) {
      if (partition.live === 0) continue;
      partition.flushThrough = this.lastRequestId;
      partition.due ??= 'flush';
      this.closeWindow(partition);
      this.ready.add(partition);
    }
    this.pump();
  }

  /**
   * Stops for good. `drain`: dispatch and finish everything queued. Otherwise queued requests
   * are rejected with `BatcherStoppedError` and running batches' signals abort (they still
   * deliver what they return). A second call may turn a drain into a plain stop.
   * Resolves when no batch is running and nothing is queued.
   */
  stop(drain: boolean): Promise<void> {
    // The promise first: a synchronous runBatch can finish the whole drain inside pump() below,
    // and the engine must find someone to tell when it goes idle.
    this.stopped ??= new Promise<void>((resolve) => (this.resolveStopped = resolve));
    if (this.phase === STOPPED) this.resolveStopped!();
    if (this.phase === OPEN) this.phase = drain ? DRAINING : STOPPING;
    else if (this.phase === DRAINING && !drain) this.phase = STOPPING;

    if (this.phase === DRAINING) {
      for (const partition of this.partitions.values()) {
        if (partition.live === 0) continue;
        partition.due = 'drain';
        this.closeWindow(partition);
        this.ready.add(partition);
      }
      this.pump();
    } else if (this.phase === STOPPING) {
      this.rejectQueued(new BatcherStoppedError(this.config.name, 'queued'));
      const reason = new BatcherStoppedError(this.config.name, 'running');
      for (const batch of this.running) batch.abort(reason);
    }
    const stopped = this.stopped;
    this.finishStopIfIdle();
    return stopped;
  }

  /**
   * Tears everything down at once without settling anyone (an operator's subscriber left):
   * timers are cancelled, running batches aborted and their Observables unsubscribed.
   */
  dispose(): void {
    if (this.phase === STOPPED) return;
    this.phase = STOPPED;
    for (const partition of this.partitions.values()) this.closeWindow(partition);
    this.ready.clear();
    this.deadlines.clear();
    const reason = new BatcherStoppedError(this.config.name, 'unsubscribed');
    for (const batch of this.running) {
      batch.done = true;
      batch.abort(reason);
      batch.inner?.unsubscribe();
    }
    this.running.clear();
    this.settledClosed = true;
    this.settled.complete();
    this.onStopped();
  }

  // Private: admission helpers.

  private partitionKey(request: EngineRequest<I, O>): string | Error {
    let key: unknown;
    try {
      key = this.config.partitionBy!(request.input);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
    if (typeof key !== 'string') {
      return new TypeError(`${prefix(this.config.name)} \`partitionBy\` must return a string, but returned ${describeValue(key)}.`);
    }
    return key;
  }

  /** What `weigh` says the request costs, or the error that refuses it (bad weight, or heavier than the whole budget). */
  private weighOf(request: EngineRequest<I, O>): number | Error {
    const config = this.config;
    let weight: unknown;
    try {
      weight = config.weigh!(request.input);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return new TypeError(`${prefix(config.name)} run(input): \`weigh(input)\` threw: ${message}`, { cause: error });
    }
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      return new TypeError(`${prefix(config.name)} run(input): \`weigh(input)\` must return a finite number ≥ 0, returned ${describeValue(weight)}.`);
    }
    if (weight > config.maxBatchWeight) {
      return new RangeError(`${prefix(config.name)} run(input): this input weighs ${weight}, more than the whole \`maxBatchWeight\` of ${config.maxBatchWeight}, so no batch can take it. Split the input, or raise maxBatchWeight.`);
    }
    return weight;
  }

  private partitionFor(key: string): Partition<I, O> {
    let partition = this.partitions.get(key);
    if (partition === undefined) {
      partition = new Partition<I, O>(key, this);
      this.partitions.set(key, partition);
    }
    return partition;
  }

  // Private: windows.

  private openWindow(partition: Partition<I, O>, delay: number): void {
    partition.timer = this.config.windowScheduler.schedule(
      onWindowTimer as (this: SchedulerAction<unknown>, state?: unknown) => void,
      delay,
      partition,
    );
  }

  private closeWindow(partition: Partition<I, O>): void {
    if (partition.timer !== null) {
      partition.timer.unsubscribe();
      partition.timer = null;
    }
  }

  /** A window's timer fired: the partition is due, unless its oldest request is younger than the window. */
  windowExpired(partition: Partition<I, O>): void {
    partition.timer = null;
    if (this.phase === STOPPED || partition.live === 0) return;
    const remaining = this.windowLeft(partition, true);
    if (remaining > 0) return this.openWindow(partition, remaining);
    partition.due ??= this.windowReason(partition);
    this.ready.add(partition);
    this.pump();
  }

  /** After a batch was taken from a partition, decide whether what is left is due now or when. */
  private reconsider(partition: Partition<I, O>): void {
    partition.due = null;
    if (partition.live === 0) return this.emptied(partition);
    if (partition.isFull(this.config.maxBatchSize, this.config.maxBatchWeight) && this.config.fullWaitsForWindow !== true) {
      this.ready.add(partition);
      return;
    }
    if (this.phase === DRAINING) {
      partition.due = 'drain';
      this.ready.add(partition);
      return;
    }
    const oldest = partition.oldest()!;
    if (oldest.id <= partition.flushThrough) {
      partition.due = 'flush';
      this.ready.add(partition);
      return;
    }
    const remaining = this.windowLeft(partition, false);
    if (remaining <= 0) {
      partition.due = this.windowReason(partition);
      this.ready.add(partition);
    } else if (partition.timer === null) {
      this.openWindow(partition, remaining);
    }
  }

  /**
   * ms from now until the partition's window closes: what is left of `maxDelayMs` since its
   * oldest request, or less when the latency target says waiting longer would break it.
   * `fired`: asked by the window's own timer.
   */
  private windowLeft(partition: Partition<I, O>, fired: boolean): number {
    const waited = elapsed(partition.oldest()!.enqueuedAt, this.clock());
    const left = this.config.maxDelayMs - waited;
    return this.config.latencyTarget === undefined ? left : this.target!.windowLeft(waited, partition.live, left, fired);
  }

  /** Why a window closes now: its oldest request waited `maxDelayMs`, or the latency target closed it sooner. */
  private windowReason(partition: Partition<I, O>): DispatchReason {
    if (this.config.latencyTarget === undefined) return 'delay';
    return elapsed(partition.oldest()!.enqueuedAt, this.clock()) < this.config.maxDelayMs ? 'target' : 'delay';
  }

  /** A partition has no waiting request left: no window, not ready, forgotten if keyed. */
  private emptied(partition: Partition<I, O>): void {
    this.closeWindow(partition);
    this.ready.delete(partition);
    partition.due = null;
    if (partition !== this.single) this.partitions.delete(partition.key);
  }

  // Private: sealing and dispatch.

  /** Seals and dispatches batches while a slot is free and a partition is due. Re-entrant calls fold into the running loop. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        const max = this.config.maxBatchSize;
        while (this.running.size < this.config.maxConcurrentBatches && this.ready.size > 0 && this.phase !== STOPPED) {
          const partition: Partition<I, O> = this.ready.values().next().value!;
          this.ready.delete(partition);
          let reason: DispatchReason;
          if (partition.isFull(max, this.config.maxBatchWeight)) reason = 'full';
          else if (partition.live > 0 && partition.due !== null) reason = partition.due;
          else {
            // It was queued here as full, then lost a request (aborted, timed out) while every
            // slot was busy; its window was closed when it filled. Decide afresh: due now (its
            // oldest has waited maxDelayMs), or a window for what is left of the delay.
            this.reconsider(partition);
            continue;
          }
          const requests = partition.take(max, this.config.maxBatchWeight, this.config.agingMs);
          const batch = new Batch<I, O>(++this.lastBatchId, requests, reason, partition.key, this.deadlineEpoch);
          batch.weight = this.config.weigh === undefined ? requests.length : partition.takenWeight;
          this.reconsider(partition);
          this.dispatch(batch);
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(batch: Batch<I, O>): void {
    const counters = this.counters;
    const size = batch.requests.length;
    for (let i = 0; i < size; i++) {
      const r = batch.requests[i];
      r.state = RUNNING;
      r.place = batch;
    }
    // With dedupeBy each input is a shared slot, standing for its callers.
    const callers = this.dedupe === undefined ? size : this.dedupe.dispatched(batch.requests);
    counters.queued -= callers;
    counters.inFlight += callers;
    counters.batches++;
    counters.batchesInFlight++;
    counters.dispatchReasons[batch.reason]++;
    counters.batchSizes[size] = (counters.batchSizes[size] ?? 0) + 1;
    batch.startedAt = this.clock();
    this.running.add(batch);
    this.onChange();
    this.execute(batch);
  }

  /**
   * Runs a batch in the slot `pump()` found free: calls `runBatch` once (or runs its steps,
   * for streaming outputs: lib/core/streamRunner.ts, lib/core/continuous.ts); the batch holds
   * its slot (its place in `running`) until {@link finishBatch}. No Observable per batch: the
   * engine counts its slots itself, which is all `mergeMap(execute, maxConcurrentBatches)` did.
   */
  private execute(batch: Batch<I, O>): void {
    const stream = this.config.stream;
    const inner = stream !== undefined
      ? (stream.kind === 'steps' ? runStepsBatch(this.config.name, stream, batch, this) : runContinuous(this.config.name, stream, batch, this))
      : invokeRunBatch(this.config.name, this.config.runBatch, batch.inputs(), batch, {
        returned: (results) => this.batchReturned(batch, results),
        failed: (error) => this.batchFailed(batch, error),
    });
    if (inner === undefined) return;
    if (batch.done) inner.unsubscribe();
    else batch.inner = inner;
  }

  /**
   * Settles each caller of the batch from its slot: a value, the `Error` found there, or, for
   * a slot holding a promise, whatever that promise settles with (the batch keeps its slot
   * until the last one has).
   */
  private batchReturned(batch: Batch<I, O>, results: ArrayLike<unknown>): void {
    if (batch.done) {
      // Abandoned (every caller left): nobody is waiting, but promises in its slots are still let go of.
      for (let i = 0; i < batch.requests.length; i++) letGoOfSlot(results, i);
      return;
    }
    batch.done = true;
    const requests = batch.requests;
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      if (r.state !== RUNNING) {
        letGoOfSlot(results, i); // its caller left while the batch ran
        continue;
      }
      let result: unknown;
      let isError: boolean;
      try {
        // A slot's getter (or a Proxy) may throw: that fails this caller only, like an Error in its slot.
        result = results[i];
        isError = result instanceof Error;
        if (!isError && typeof result === 'object' && isLateResult(result)) {
          this.awaitSlot(batch, i, result);
          continue;
        }
      } catch (error) {
        result = error;
        isError = true;
      }
      if (isError) this.settle(r, FAILED, undefined, result);
      else this.settle(r, SUCCEEDED, result as O, undefined);
    }
    if (batch.lateSlots === 0) this.finishBatch(batch, 'succeeded');
  }

  /** A result slot holds a promise: its caller settles when it does. */
  private awaitSlot(batch: Batch<I, O>, index: number, late: LateResult<unknown>): void {
    batch.lateSlots++;
    (batch.late ??= [])[index] = late as LateResult<O>;
    const request = batch.requests[index];
    const settled = (state: SettledState, value: unknown): void => {
      // Released already if its caller settled first (see releaseLateSlot).
      if (batch.late![index] !== late) return;
      batch.late![index] = undefined;
      batch.lateSlots--;
      if (request.state === RUNNING) {
        if (state === SUCCEEDED && value instanceof Error) state = FAILED;
        this.settle(request, state, state === SUCCEEDED ? (value as O) : undefined, value);
      }
      if (batch.lateSlots === 0) this.finishBatch(batch, 'succeeded');
      this.onChange();
      this.finishStopIfIdle();
    };
    late.then((value) => settled(SUCCEEDED, value), (error: unknown) => settled(late[FAILED_WITH_CALL] === true ? BATCH_FAILED : FAILED, error));
  }

  private batchFailed(batch: Batch<I, O>, error: unknown): void {
    if (batch.done) return;
    const config = this.config;
    if (config.isolateFailures === 'bisect' && canBisect(batch, error)) {
      // Its callers' results become promises that bisection settles (lib/core/bisect.ts).
      this.counters.failedBatches++;
      return this.batchReturned(batch, bisect(batch, error, { name: config.name, runBatch: config.runBatch, counters: this.counters, weighed: config.weigh !== undefined }));
    }
    batch.done = true;
    this.counters.failedBatches++;
    const requests = batch.requests;
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i];
      if (r.state === RUNNING) this.settle(r, BATCH_FAILED, undefined, error);
    }
    this.finishBatch(batch, 'failed');
  }

  // Streaming outputs (StreamHost): the runners in streamRunner.ts and continuous.ts call these.

  /** The model finished (or failed) one item of a streaming batch; not a caller leaving, so never an abandon. */
  itemFinished(batch: Batch<I, O>, request: EngineRequest<I, O>, failed: boolean, error: unknown): void {
    const over = batch.done;
    batch.done = true;
    if (failed) this.settle(request, FAILED, undefined, error);
    else this.settle(request, SUCCEEDED, outputOf<O>(request), undefined);
    batch.done = over;
    this.onChange();
  }

  /** A streaming batch's stream ended: callers still going settle (output, or the batch's error), and the slot frees. */
  streamEnded(batch: Batch<I, O>, still: readonly EngineRequest<I, O>[], failed: boolean, error: unknown): void {
    if (batch.done) return;
    batch.done = true;
    if (failed) this.counters.failedBatches++;
    for (const r of still) {
      if (r.state !== RUNNING || r.place !== batch) continue;
      if (failed) this.settle(r, BATCH_FAILED, undefined, error);
      else this.settle(r, SUCCEEDED, outputOf<O>(r), undefined);
    }
    this.finishBatch(batch, failed ? 'failed' : 'succeeded');
  }

  /** Continuous batching: up to `max` waiting requests of the batch's partition join the running batch now. */
  admitInto(batch: Batch<I, O>, max: number): EngineRequest<I, O>[] {
    const partition = this.partitions.get(batch.partition);
    if (batch.done || (this.phase !== OPEN && this.phase !== DRAINING) || partition === undefined || partition.live === 0) return [];
    const requests = partition.take(max, this.config.maxBatchWeight, this.config.agingMs);
    for (const r of requests) {
      r.state = RUNNING;
      r.place = batch;
    }
    this.counters.queued -= requests.length;
    this.counters.inFlight += requests.length;
    batch.live += requests.length;
    this.reconsider(partition);
    this.onChange();
    return requests;
  }

  /** Frees the batch's slot, then lets the next due batch go. */
  private finishBatch(batch: Batch<I, O>, outcome: 'succeeded' | 'failed' | 'abandoned'): void {
    if (!this.running.delete(batch)) return; // disposed meanwhile
    // An Observable result has emitted (take(1) closed it) or is cancelled here: let it go.
    batch.inner?.unsubscribe();
    batch.inner = undefined;
    const counters = this.counters;
    counters.batchesInFlight--;
    batch.finishedAt = this.clock();
    if (outcome === 'succeeded' && wasBisected(batch)) outcome = 'failed'; // its first call failed; its time is not the model's
    batch.outcome = outcome;
    counters.lastBatch = batch;
    if (outcome === 'succeeded') this.target?.finished(batch);
    this.pump();
    this.onSlotFreed();
    this.onChange();
    this.finishStopIfIdle();
  }

  /**
   * Every caller of a running batch has gone (aborted, timed out, unsubscribed): abort its
   * signal, cancel an Observable result, free its slot now and drop whatever it returns later.
   * A `runBatch` that ignores its signal and never settles can no longer hold a slot forever.
   */
  private abandon(batch: Batch<I, O>): void {
    batch.abort(abandonedError());
    if (batch.done) return; // runBatch answered synchronously from its abort listener
    batch.done = true;
    batch.inner?.unsubscribe();
    this.counters.abandonedBatches++;
    this.finishBatch(batch, 'abandoned');
  }

  // Private: settling.

  /** A request settled on its own (not with its batch's result): update stats listeners too. */
  private settleAlone(request: EngineRequest<I, O>, outcome: SettledState, reason: unknown): void {
    if (request.state >= SUCCEEDED) return;
    this.settle(request, outcome, undefined, reason);
    this.onChange();
    this.finishStopIfIdle();
  }

  /** The one place a request settles. Anything after the first call is ignored. */
  private settle(request: EngineRequest<I, O>, outcome: SettledState, value: O | undefined, reason: unknown): void {
    const previous = request.state;
    if (previous >= SUCCEEDED) return;
    const place = request.place as object | undefined;
    request.state = outcome;
    request.place = outcome === SUCCEEDED ? value : reason; // from now on, its result

    // With dedupeBy, a caller in a shared slot and the slot itself settle by dedupe.ts's rules (on the steps below).
    if (this.dedupe !== undefined && this.dedupe.settle(request, previous, place)) return;
    this.counters.count(outcome);
    this.vacate(request, previous, place, true);
    this.release(request);
    // Only after the settlement is out: abandoning may finish the batch and, on a stop, the engine.
    if (previous === RUNNING) this.leftBatch(place as Batch<I, O>, request);
  }

  /** Takes a request out of its queue or its batch; `counted`: it is a caller, counted in `queued` or `inFlight`. */
  private vacate(request: EngineRequest<I, O>, previous: number, place: object | undefined, counted: boolean): void {
    if (previous === QUEUED) {
      if (counted) this.counters.queued--;
      const partition = place as Partition<I, O>;
      partition.removed(request);
      if (partition.live === 0) this.emptied(partition);
    } else if (previous === RUNNING) {
      if (counted) this.counters.inFlight--;
      (place as Batch<I, O>).live--;
    }
  }

  /** Lets go of a settled caller's deadline and abort listener, and hands it its outcome. */
  private release(request: EngineRequest<I, O>): void {
    const extras = request.extras;
    if (extras !== undefined) {
      if (extras.deadline > 0) this.deadlines.settled();
      if (extras.onAbort !== undefined) {
        extras.signal!.removeEventListener('abort', extras.onAbort);
        extras.onAbort = undefined;
      }
    }
    if (this.routes) {
      this.handOver(request);
      if (this.settled.observed) this.settled.next(request);
    } else if (this.settledClosed) this.handOver(request); // settled$ has completed: a late refusal goes straight to its caller
    else this.settled.next(request);
  }

  /** Hands a settled request to its caller: by its own `deliver`, or, made without one, by the face's {@link EngineHooks.deliver}. */
  private handOver(request: EngineRequest<I, O>): void {
    const own = request.deliver as (() => void) | undefined;
    if (own === undefined) this.deliverPlain!(request);
    else own.call(request);
  }

  /** A request of a running batch settled: stop awaiting its promise slot, and abandon the batch if nobody is left. */
  private leftBatch(batch: Batch<I, O>, request: EngineRequest<I, O>): void {
    if (batch.lateSlots > 0) this.releaseLateSlot(batch, request);
    if (batch.live === 0 && !batch.done) this.abandon(batch);
  }

  /**
   * A caller whose slot holds a promise settled first (aborted, timed out): stop waiting for
   * that promise, tell its owner, and finish the batch if it was the last one awaited.
   */
  private releaseLateSlot(batch: Batch<I, O>, request: EngineRequest<I, O>): void {
    const index = batch.requests.indexOf(request);
    const late = batch.late![index];
    if (late === undefined) return;
    batch.late![index] = undefined;
    batch.lateSlots--;
    try {
      late[CALLER_GONE]?.();
    } catch {
      // the owner's bookkeeping must not break settlement
    }
    if (batch.lateSlots === 0) this.finishBatch(batch, 'succeeded');
  }

  private expire(request: EngineRequest<I, O>): void {
    const phase = request.state === QUEUED ? 'queued' : 'running';
    this.settleAlone(request, TIMED_OUT, new RequestTimeoutError(this.config.name, request.extras!.timeoutMs, phase, this.config.timeoutHint));
  }

  private rejectQueued(error: BatcherStoppedError): void {
    for (const partition of [...this.partitions.values()]) {
      this.closeWindow(partition);
      let r: EngineRequest<I, O> | undefined;
      while (partition.live > 0 && (r = partition.oldest()) !== undefined) this.settle(r, REJECTED, undefined, error);
    }
    this.ready.clear();
    this.onChange();
  }

  private finishStopIfIdle(): void {
    if ((this.phase !== DRAINING && this.phase !== STOPPING) || this.counters.queued > 0 || this.running.size > 0) return;
    this.phase = STOPPED;
    for (const partition of this.partitions.values()) this.closeWindow(partition);
    this.deadlines.clear();
    this.onChange();
    this.settledClosed = true;
    this.settled.complete();
    this.onStopped();
    this.resolveStopped?.();
  }
}

// Private: the scheduler calls this with the partition as its state, so no closure is made per window.
function onWindowTimer(this: unknown, partition?: Partition<unknown, unknown>): void {
  partition!.owner.windowExpired(partition!);
}

/** Milliseconds from tick `from` to tick `to`, correct across the 2^31 wrap of the engine clock. */
function elapsed(from: number, to: number): number {
  return (to - from) | 0;
}

function abandonedError(): Error {
  return new DOMException('Every caller of this batch has gone (aborted or timed out).', 'AbortError');
}

function noop(): void {}

/**
 * The slot of a caller that left while its batch ran: a promise there is told its caller has
 * gone and observed, so its rejection is not reported as unhandled.
 */
function letGoOfSlot(results: ArrayLike<unknown>, index: number): void {
  try {
    const slot = results[index];
    if (typeof slot !== 'object' || !isLateResult(slot)) return;
    slot.then(undefined, noop);
    slot[CALLER_GONE]?.();
  } catch {
    // a throwing getter in the slot of a caller who is gone: nothing to deliver
  }
}

/** What a face wants to hear from the engine. */
export interface EngineHooks {
  /**
   * The engine hands each settled request to its caller itself (`request.deliver()`), and
   * `settled$` carries it, after that, only while someone subscribes to it (a face's `results$`):
   * the shared settlement stream is then materialised only when someone listens. Without this the
   * face routes from `settled$`.
   */
  routeToCallers?: boolean;
  /**
   * Delivers a settled request that has no `deliver` method of its own: a face whose requests
   * are plain object literals (`Batcher.run()`'s) keeps that function out of every request,
   * one field less per pending call. Requests made by a class use their own method.
   */
  deliver?(request: EngineRequest<unknown, unknown>): void;
  /** After the engine has stopped (once; `settled$` has completed). */
  stopped?(): void;
  /** After state changes worth a stats update (batch dispatched or finished, a request settled alone). */
  changed?(): void;
  /** After a batch finished and freed its slot (a worker pulls more then). */
  slotFreed?(): void;
}
