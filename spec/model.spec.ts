/**
 * Model-based test of the batching engine (issue 14): random command sequences (run, abort,
 * time passing so deadlines and windows fire, a running batch finishing with values, a throw,
 * slot errors or a wrong length, flush, retuning with configure(), stop, drain), with or without
 * `dedupeBy` (calls sharing a key share one input while one of them waits or runs), drive a real `Batcher` on a virtual
 * clock, while a tiny reference model of the queue (what is waiting, running, settled)
 * predicts what must happen. After every command it checks:
 *
 * - every request settles exactly once, and only in a way the model allows at that step
 *   (its batch's value or error, its own abort, its deadline, a stop, a full queue);
 * - whatever must settle at that step has settled (an abort, a passed deadline, a finished
 *   batch, a plain stop);
 * - a batch holds the oldest waiting requests, as many as fit, and starts only on a free slot;
 * - nothing waits while a slot is free: no full batch, no request past its window, nothing
 *   flushed, nothing during a drain;
 * - stats add up and agree with the model (queued, in flight, batches running);
 * - `stop()` resolves once the engine is idle, and not before.
 *
 * Deterministic: the clock is a ManualScheduler and every `runBatch` outcome is a command.
 */
import fc from 'fast-check';
import { Abort as SharedAbort, Advance as SharedAdvance, Run as SharedRun, Step as SharedStep } from './helpers/modelCommands';
import { Subject } from 'rxjs';
import {
  Batcher,
  BatcherStoppedError,
  BatchResultError,
  QueueFullError,
  RequestTimeoutError,
  type BatchContext,
} from '../lib';
import { ManualScheduler } from './helpers/manualScheduler';

/** How `runBatch` answers: later through a Promise or an Observable (a command finishes it), or at once. */
type Style = 'promise' | 'observable' | 'sync';
type FinishMode = 'value' | 'throw' | 'slotErrors' | 'wrongLength';
/** Ways a request may settle. */
type Way = 'value' | 'slotError' | 'batchError' | 'badResult' | 'cancelled' | 'timedOut' | 'stopped' | 'queueFull';

interface Config {
  maxBatchSize: number;
  maxDelayMs: number;
  maxConcurrentBatches: number;
  maxQueueSize: number | undefined;
  timeoutMs: number | undefined;
  styles: Style[];
  /** Inputs x go to partition x % partitions (1: no partitionBy). */
  partitions: number;
  /** With `dedupeBy`: call x has key `keys[x % keys.length]`, scoped to its partition. */
  keys: number[] | undefined;
  /** Windows may close sooner under a latency target (never later than maxDelayMs, which the checks below hold it to). */
  latencyTarget: { p99Ms: number } | undefined;
}

/** With `dedupeBy`: one input shared by the calls with its key (and partition) while one of them waits or runs. */
interface ModelSlot {
  key: number;
  partition: number;
  /** The call that brought it: runBatch sees its input. */
  creator: Req;
  members: Req[];
  state: 'queued' | 'running' | 'done';
  batch: ModelBatch | undefined;
}

interface Req {
  x: number;
  state: 'queued' | 'running' | 'settled' | 'refused';
  enqueuedAt: number;
  deadline: number;
  controller: AbortController | undefined;
  batch: ModelBatch | undefined;
  /** With `dedupeBy`: the shared input it waits for. */
  slot: ModelSlot | undefined;
  /** Ways it may settle during the current command; non-empty means it must. */
  allowed: Set<Way>;
  /** Settlements seen on `results$` and by the caller (each must end at exactly 1). */
  count: number;
  delivered: number;
  way: Way | undefined;
}

interface ModelBatch {
  id: number;
  requests: Req[];
  style: Style;
  /** Answered by a command (or at once): its result is in. */
  finished: boolean;
  answer: (mode: FinishMode) => void;
}

/** The real batcher and the reference model, side by side. */
class World {
  readonly scheduler = new ManualScheduler();
  readonly batcher: Batcher<number, number>;
  readonly requests: Req[] = [];
  readonly batches: ModelBatch[] = [];
  /** With `dedupeBy`: every shared input, in the order they were opened. */
  readonly slots: ModelSlot[] = [];
  readonly stops: { resolved: boolean }[] = [];
  phase: 'open' | 'draining' | 'stopping' = 'open';
  /** Requests up to this x were queued when flush() was last called. */
  flushThrough = -1;
  step = 0;
  /** Problems found inside callbacks (runBatch), reported by the next check. */
  readonly problems: string[] = [];

  constructor(readonly cfg: Config) {
    this.batcher = new Batcher<number, number>({
      maxBatchSize: cfg.maxBatchSize,
      maxDelayMs: cfg.maxDelayMs,
      maxConcurrentBatches: cfg.maxConcurrentBatches,
      maxQueueSize: cfg.maxQueueSize,
      timeoutMs: cfg.timeoutMs,
      latencyTarget: cfg.latencyTarget,
      partitionBy: cfg.partitions > 1 ? (x) => String(x % cfg.partitions) : undefined,
      dedupeBy: cfg.keys === undefined ? undefined : (x) => this.keyOf(x),
      scheduler: this.scheduler,
      runBatch: (inputs, ctx) => this.runBatch(inputs, ctx),
    });
    // The engine's own record of each settlement, synchronous: it moves the model.
    this.batcher.results$.subscribe((s) => {
      const r = this.requests[s.input];
      this.settled(r, s.status === 'fulfilled' ? (s.value === source(r) * 10 ? 'value' : undefined) : classify(s.reason, source(r), r.controller), s);
    });
  }

  keyOf(x: number): number {
    return this.cfg.keys![x % this.cfg.keys!.length];
  }

  /** With `dedupeBy`: shared inputs waiting, oldest first; of one partition if given. */
  waitingSlots(partition?: number): ModelSlot[] {
    return this.slots.filter((s) => s.state === 'queued' && (partition === undefined || s.partition === partition));
  }

  /** What waits for a batch, oldest first, as the calls that brought it: requests, or with `dedupeBy` shared inputs. */
  waitingInputs(partition: number): Req[] {
    return this.cfg.keys === undefined ? this.queued(partition) : this.waitingSlots(partition).map((s) => s.creator);
  }

  get now(): number {
    return this.scheduler.now();
  }

  /** Waiting requests, oldest first; of one partition if given. */
  queued(partition?: number): Req[] {
    return this.requests.filter((r) => r.state === 'queued' && (partition === undefined || r.x % this.cfg.partitions === partition));
  }

  /** Batches that hold a slot: not answered, and someone still waits for them. */
  active(): ModelBatch[] {
    return this.batches.filter((b) => !b.finished && b.requests.some((r) => r.state === 'running'));
  }

  private runBatch(inputs: readonly number[], _ctx: BatchContext): number[] | Promise<number[]> | Subject<number[]> {
    const queued = this.waitingInputs(inputs[0] % this.cfg.partitions);
    const expected = queued.slice(0, this.cfg.maxBatchSize).map((r) => r.x);
    if (JSON.stringify(inputs) !== JSON.stringify(expected)) {
      this.problems.push(`runBatch got [${inputs.join(',')}], expected the oldest waiting [${expected.join(',')}]`);
    }
    if (this.active().length >= this.cfg.maxConcurrentBatches) {
      this.problems.push(`a batch [${inputs.join(',')}] started while ${this.active().length} of ${this.cfg.maxConcurrentBatches} slots were busy: ${this.active().map((b) => `[${b.requests.map((r) => `${r.x}:${r.state}`).join(',')}]`).join(' ')} at ${this.now}`);
    }
    const style = this.cfg.styles[this.batches.length % this.cfg.styles.length];
    let requests = inputs.map((x) => this.requests[x]);
    if (this.cfg.keys !== undefined) {
      // Each input is a shared one: its callers run with it.
      const slots = requests.map((r) => r.slot!);
      for (const slot of slots) {
        if (slot.state !== 'queued' || !slot.members.some((m) => m.state === 'queued')) this.problems.push(`shared input ${slot.creator.x} reached runBatch while ${slot.state}, callers ${slot.members.map((m) => `${m.x}:${m.state}`).join(',')}`);
        slot.state = 'running';
      }
      requests = slots.flatMap((slot) => slot.members.filter((m) => m.state === 'queued'));
    }
    for (const r of requests) {
      if (r.state !== 'queued') this.problems.push(`request ${r.x} reached runBatch while ${r.state}`);
      r.state = 'running';
    }
    const results = (mode: FinishMode): number[] =>
      mode === 'wrongLength' ? inputs.slice(1).map((x) => x * 10)
        : inputs.map((x) => (mode === 'slotErrors' && x % 2 === 1 ? (new Error(`slot ${x}`) as never) : x * 10));
    const batch: ModelBatch = { id: this.batches.length + 1, requests, style, finished: false, answer: () => {} };
    this.batches.push(batch);
    for (const r of requests) if (r.slot !== undefined) r.slot.batch = batch;
    if (style === 'sync') {
      this.expectAnswer(batch, 'value');
      return results('value');
    }
    if (style === 'observable') {
      const subject = new Subject<number[]>();
      batch.answer = (mode) => (mode === 'throw' ? subject.error(new Error('model crashed')) : subject.next(results(mode)));
      return subject;
    }
    return new Promise<number[]>((resolve, reject) => {
      batch.answer = (mode) => (mode === 'throw' ? reject(new Error('model crashed')) : resolve(results(mode)));
    });
  }

  /** The batch's result is in: each caller still waiting must settle with its slot (or the batch's error). */
  expectAnswer(batch: ModelBatch, mode: FinishMode): void {
    const wasActive = this.active().includes(batch);
    batch.finished = true;
    if (!wasActive) return; // abandoned: a late result changes nothing
    for (const r of batch.requests) {
      if (r.slot !== undefined && r.slot.batch === batch) r.slot.state = 'done';
      if (r.state !== 'running') continue;
      r.allowed.add(mode === 'value' ? 'value'
        : mode === 'throw' ? 'batchError'
        : mode === 'wrongLength' ? 'badResult'
        : source(r) % 2 === 1 ? 'slotError' : 'value');
    }
  }

  run(timeoutMs: number | undefined, withSignal: boolean): void {
    const x = this.requests.length;
    const controller = withSignal ? new AbortController() : undefined;
    const own = timeoutMs ?? this.cfg.timeoutMs;
    const r: Req = {
      x, state: 'queued', enqueuedAt: this.now, deadline: own === undefined ? Infinity : this.now + own,
      controller, batch: undefined, slot: undefined, allowed: new Set(), count: 0, delivered: 0, way: undefined,
    };
    if (this.phase !== 'open') {
      r.state = 'refused';
      r.allowed.add('stopped');
    } else if (this.cfg.maxQueueSize !== undefined && this.queued().length >= this.cfg.maxQueueSize) {
      r.state = 'refused';
      r.allowed.add('queueFull');
    } else if (this.cfg.keys !== undefined) {
      // Joins the shared input of its key and partition while that waits or runs, or opens one.
      const key = this.keyOf(x);
      const partition = x % this.cfg.partitions;
      let slot = this.slots.find((s) => s.state !== 'done' && s.key === key && s.partition === partition);
      if (slot === undefined) {
        slot = { key, partition, creator: r, members: [], state: 'queued', batch: undefined };
        this.slots.push(slot);
      } else if (slot.state === 'running') {
        r.state = 'running';
        slot.batch!.requests.push(r);
      }
      slot.members.push(r);
      r.slot = slot;
    }
    this.requests.push(r);
    // Refused before results$ completed, the refusal is on it; after, only the caller hears.
    const onStream = r.state !== 'refused' || !this.stops.some((stop) => stop.resolved);
    this.batcher.run(x, { signal: controller?.signal, timeoutMs }).then(
      (value) => this.delivered(r, value === source(r) * 10 ? 'value' : undefined, value, onStream),
      (error: unknown) => this.delivered(r, classify(error, source(r), controller), error, onStream),
    );
  }

  /** The engine settled a request (seen on results$, synchronously). */
  private settled(r: Req, way: Way | undefined, raw: unknown): void {
    r.count++;
    if (r.count > 1) this.problems.push(`request ${r.x} settled ${r.count} times`);
    if (way === undefined) this.problems.push(`request ${r.x} settled with an unexpected ${JSON.stringify(raw)}`);
    else if (!r.allowed.has(way)) this.problems.push(`request ${r.x} settled as ${way} at step ${this.step}; allowed: ${[...r.allowed].join(',') || 'nothing'}`);
    r.way = way;
    r.state = 'settled';
    // The last caller of a shared input gone: the input goes too, and its key is free.
    const slot = r.slot;
    if (slot !== undefined && slot.state !== 'done' && slot.members.every((m) => m.state === 'settled')) slot.state = 'done';
  }

  /** The caller heard (its promise settled): once, and the way the engine said. */
  private delivered(r: Req, way: Way | undefined, raw: unknown, onStream: boolean): void {
    r.delivered++;
    if (!onStream) this.settled(r, way, raw);
    if (r.delivered > 1) this.problems.push(`request ${r.x} was delivered ${r.delivered} times`);
    if (way !== r.way) this.problems.push(`request ${r.x} was delivered as ${String(way)} but settled as ${String(r.way)}`);
  }

  abort(pick: number): void {
    const open = this.requests.filter((r) => r.controller !== undefined && !r.controller.signal.aborted);
    if (open.length === 0) return;
    const r = open[pick % open.length];
    if (r.state === 'queued' || r.state === 'running') r.allowed.add('cancelled');
    r.controller!.abort(new Error(`client ${r.x} left`));
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (const r of this.requests) {
      if ((r.state === 'queued' || r.state === 'running') && r.deadline <= end) r.allowed.add('timedOut');
    }
    this.scheduler.advance(ms);
  }

  finish(pick: number, mode: FinishMode): void {
    // Any unanswered batch, abandoned ones included: their late result must change nothing.
    const open = this.batches.filter((b) => !b.finished && b.style !== 'sync');
    if (open.length === 0) return;
    const batch = open[pick % open.length];
    this.expectAnswer(batch, mode);
    batch.answer(mode);
  }

  /** Retunes the batcher; the model's rules change with it (issue 10: configure()). */
  configure(changes: Pick<Config, 'maxBatchSize' | 'maxDelayMs' | 'maxConcurrentBatches' | 'latencyTarget'>): void {
    Object.assign(this.cfg, changes);
    this.batcher.configure(changes);
  }

  flush(): void {
    if (this.phase === 'open' || this.phase === 'draining') this.flushThrough = this.requests.length - 1;
    this.batcher.flush();
  }

  stop(drain: boolean): void {
    if (this.phase === 'open') this.phase = drain ? 'draining' : 'stopping';
    else if (this.phase === 'draining' && !drain) this.phase = 'stopping';
    if (this.phase === 'stopping') for (const r of this.queued()) r.allowed.add('stopped');
    const record = { resolved: false };
    this.stops.push(record);
    void this.batcher.stop({ drain }).then(() => (record.resolved = true));
  }

  /** Lets promise callbacks run, then checks every invariant. */
  async check(): Promise<void> {
    for (let i = 0; i < 12; i++) await Promise.resolve();
    const problems = this.problems;
    // Exactly once, and what had to settle did.
    for (const r of this.requests) {
      if (r.allowed.size > 0 && r.count === 0) problems.push(`request ${r.x} should have settled (${[...r.allowed].join('|')}) but is ${r.state}`);
      if (r.count !== r.delivered) problems.push(`request ${r.x} settled ${r.count} times but its caller heard ${r.delivered}`);
      r.allowed.clear();
    }
    // Stats add up and agree with the model.
    const s = this.batcher.stats();
    if (s.submitted !== s.queued + s.inFlight + s.succeeded + s.failed + s.cancelled + s.timedOut + s.rejected) {
      problems.push(`stats do not add up: ${JSON.stringify(s)}`);
    }
    const queued = this.queued();
    const running = this.requests.filter((r) => r.state === 'running').length;
    const active = this.active().length;
    if (s.queued !== queued.length) problems.push(`stats.queued ${s.queued}, model ${queued.length}`);
    if (s.inFlight !== running) problems.push(`stats.inFlight ${s.inFlight}, model ${running}`);
    if (s.batchesInFlight !== active) problems.push(`stats.batchesInFlight ${s.batchesInFlight}, model ${active} (an abandoned batch must free its slot)`);
    // Nothing waits while a slot is free (in any partition).
    for (let p = 0; p < this.cfg.partitions && active < this.cfg.maxConcurrentBatches; p++) {
      const waiting = this.waitingInputs(p);
      if (waiting.length === 0) continue;
      const age = this.now - waiting[0].enqueuedAt;
      if (waiting.length >= this.cfg.maxBatchSize) problems.push(`${waiting.length} requests wait (a full batch) while a slot is free`);
      else if (age > 0 && age >= this.cfg.maxDelayMs) problems.push(`request ${waiting[0].x} waits ${age} ms (window ${this.cfg.maxDelayMs} ms) while a slot is free`);
      else if (waiting[0].x <= this.flushThrough) problems.push(`request ${waiting[0].x} was flushed but waits while a slot is free`);
      else if (this.phase === 'draining') problems.push(`request ${waiting[0].x} waits during a drain while a slot is free`);
    }
    // stop() resolves once idle, not before.
    const idle = queued.length === 0 && active === 0;
    for (const stop of this.stops) {
      if (stop.resolved !== idle) problems.push(`stop() ${stop.resolved ? 'resolved' : 'is pending'} while the engine is ${idle ? 'idle' : 'busy'}`);
    }
    if (problems.length > 0) throw new Error(`after step ${this.step}:\n  ${problems.join('\n  ')}`);
  }

  /** Drains and answers every batch until nothing is left, then checks the end state. */
  async windDown(): Promise<void> {
    this.step++;
    this.stop(true);
    await this.check();
    for (let guard = 0; guard < 200 && (this.queued().length > 0 || this.active().length > 0); guard++) {
      this.step++;
      this.finish(0, 'value');
      this.advance(this.cfg.maxDelayMs + 1);
      await this.check();
    }
    for (const r of this.requests) {
      if (r.count !== 1 || r.delivered !== 1) throw new Error(`request ${r.x} settled ${r.count} times, delivered ${r.delivered} (${r.state})`);
    }
    if (!this.stops.every((s) => s.resolved)) throw new Error('stop() never resolved');
    expect(this.batcher.stats()).toMatchObject({ queued: 0, inFlight: 0, batchesInFlight: 0, stopped: true, submitted: this.requests.length });
    expect(this.scheduler.scheduledCount).toBe(0);
  }
}

/** The input runBatch saw for this call: its own, or with `dedupeBy` that of the call that brought the shared input. */
function source(r: Req): number {
  return r.slot?.creator.x ?? r.x;
}

function classify(error: unknown, x: number, controller: AbortController | undefined): Way | undefined {
  if (controller !== undefined && error === controller.signal.reason) return 'cancelled';
  if (error instanceof RequestTimeoutError) return 'timedOut';
  if (error instanceof BatcherStoppedError) return 'stopped';
  if (error instanceof QueueFullError) return 'queueFull';
  if (error instanceof BatchResultError) return 'badResult';
  if (error instanceof Error && error.message === 'model crashed') return 'batchError';
  if (error instanceof Error && error.message === `slot ${x}`) return 'slotError';
  return undefined;
}

// Commands: each one acts on the world, then checks it.

abstract class Step extends SharedStep<World> {}
class Run extends SharedRun<World> {}
class Abort extends SharedAbort<World> {}
class Advance extends SharedAdvance<World> {}
class Finish extends Step {
  constructor(readonly pick: number, readonly mode: FinishMode) { super(); }
  act(w: World): void { w.finish(this.pick, this.mode); }
  toString(): string { return `finish(${this.pick}, ${this.mode})`; }
}
class Flush extends Step {
  act(w: World): void { w.flush(); }
  toString(): string { return 'flush()'; }
}
class Configure extends Step {
  constructor(readonly changes: Pick<Config, 'maxBatchSize' | 'maxDelayMs' | 'maxConcurrentBatches' | 'latencyTarget'>) { super(); }
  act(w: World): void { w.configure(this.changes); }
  toString(): string { return `configure(${JSON.stringify(this.changes)})`; }
}
class Stop extends Step {
  constructor(readonly drain: boolean) { super(); }
  act(w: World): void { w.stop(this.drain); }
  toString(): string { return `stop(${this.drain ? 'drain' : ''})`; }
}

const latencyTarget = fc.option(fc.integer({ min: 1, max: 12 }).map((p99Ms) => ({ p99Ms })), { nil: undefined, freq: 2 });
const run = fc.tuple(fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined, freq: 2 }), fc.boolean()).map(([t, s]) => new Run(t, s));
const commands = [
  run, run, run, run, run,
  fc.nat(20).map((p) => new Abort(p)),
  fc.nat(20).map((p) => new Abort(p)),
  fc.integer({ min: 0, max: 6 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 0, max: 6 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 0, max: 6 }).map((ms) => new Advance(ms)),
  fc.tuple(fc.nat(20), fc.constantFrom<FinishMode>('value', 'value', 'throw', 'slotErrors', 'wrongLength')).map(([p, m]) => new Finish(p, m)),
  fc.tuple(fc.nat(20), fc.constantFrom<FinishMode>('value', 'value', 'throw', 'slotErrors', 'wrongLength')).map(([p, m]) => new Finish(p, m)),
  fc.tuple(fc.nat(20), fc.constantFrom<FinishMode>('value', 'value', 'throw', 'slotErrors', 'wrongLength')).map(([p, m]) => new Finish(p, m)),
  fc.constant(new Flush()),
  fc.record({
    maxBatchSize: fc.constantFrom(1, 2, 3, 4),
    maxDelayMs: fc.integer({ min: 0, max: 5 }),
    maxConcurrentBatches: fc.constantFrom(1, 1, 2, 3),
    latencyTarget: latencyTarget,
  }).map((c) => new Configure(c)),
  fc.boolean().map((d) => new Stop(d)),
];

const config: fc.Arbitrary<Config> = fc.record({
  maxBatchSize: fc.constantFrom(1, 2, 2, 3, 3, 4),
  maxDelayMs: fc.integer({ min: 0, max: 5 }),
  maxConcurrentBatches: fc.constantFrom(1, 1, 1, 2),
  maxQueueSize: fc.option(fc.integer({ min: 2, max: 8 }), { nil: undefined, freq: 3 }),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 15 }), { nil: undefined }),
  styles: fc.array(fc.constantFrom<Style>('promise', 'promise', 'observable', 'sync'), { minLength: 1, maxLength: 3 }),
  partitions: fc.constantFrom(1, 1, 2),
  keys: fc.option(fc.array(fc.nat(2), { minLength: 1, maxLength: 12 }), { nil: undefined, freq: 2 }),
  latencyTarget,
});

/** Runs per CI run; MODEL_RUNS and MODEL_SEED override (e.g. to hunt with many seeds). */
const NUM_RUNS = Number(process.env.MODEL_RUNS ?? 1000);
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);

describe('model-based: the engine against a reference model of its queue', () => {
  it('settles every request exactly once, never leaves one waiting by a free slot, and stops when idle', async () => {
    await fc.assert(
      fc.asyncProperty(config, fc.commands(commands, { maxCommands: 60, size: 'medium' }), async (cfg, cmds) => {
        const world = new World(cfg);
        await fc.asyncModelRun(() => ({ model: {}, real: world }), cmds);
        await world.windDown();
      }),
      { numRuns: NUM_RUNS, seed: SEED },
    );
  }, 60_000);
});
