import { describeValue, prefix } from '../errors/describe.js';
import type { Batch } from './batch.js';
import type { Counters } from './counters.js';
import { Refused } from './defaults.js';
import { CANCELLED, EngineRequest, QUEUED, RequestExtras, RUNNING, SUCCEEDED, type SettledState } from './request.js';

/**
 * What `dedupeBy` returns: equal keys (`===`) mark identical inputs.
 *
 * @example
 * ```ts
 * const key: DedupeKey = `${query.userId}|${query.fields.join(',')}`;
 * ```
 */
export type DedupeKey = string | number;

/**
 * How a face shares inputs: the key of each call (equal keys, as a `Map` compares them, share
 * one {@link SharedSlot}), and, optionally, who to tell when a slot's outcome is in. `dedupeBy`
 * is one such rule ({@link dedupeRule}); the DataLoader drop-in keys calls by its cache entry.
 *
 * @example
 * ```ts
 * const byId: ShareRule<{ id: string }, User> = { keyOf: (request) => request.input.id };
 * ```
 */
export interface ShareRule<I, O> {
  /** The call's key (any value, compared as `Map` keys are), or a {@link Refused} to refuse the call with. */
  keyOf(request: EngineRequest<I, O>): unknown;
  /**
   * Told once per slot, before its callers hear: its outcome and value or reason, or
   * `CANCELLED` with the last leaver's reason when every caller left before it settled.
   */
  settled?(key: unknown, outcome: SettledState, result: unknown): void;
}

/**
 * The rule of the `dedupeBy` option: the key is `dedupeBy(input)`, a string or a finite number;
 * a call whose `dedupeBy` throws, or returns anything else, is refused with a `TypeError`
 * naming the option.
 *
 * @example
 * ```ts
 * const rule = dedupeRule('users', (query: { id: string }) => query.id);
 * ```
 */
export function dedupeRule<I, O>(name: string, dedupeBy: (input: I) => DedupeKey): ShareRule<I, O> {
  return {
    keyOf(request: EngineRequest<I, O>): unknown {
      let key: unknown;
      try {
        key = dedupeBy(request.input);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return new Refused(new TypeError(`${prefix(name)} run(input): \`dedupeBy(input)\` threw: ${message}`, { cause: error }));
      }
      if (typeof key === 'string' || (typeof key === 'number' && Number.isFinite(key))) return key;
      return new Refused(new TypeError(`${prefix(name)} run(input): \`dedupeBy(input)\` must return a string or a finite number, returned ${describeValue(key)}.`));
    },
  };
}

/**
 * The queue entry that identical inputs share under `dedupeBy`: one input for `runBatch`, one
 * result, any number of callers. It waits in a partition queue and runs in a batch like a
 * caller's request (it takes the creator's input, id, arrival time, weight, priority and
 * `context`), but it is nobody's call: it never reaches `settled$` and is never counted in
 * stats. Its callers (*members*) keep their own requests, with their own deadline and signal,
 * and are counted and told one by one.
 *
 * @example
 * ```ts
 * const slot = new SharedSlot(creator, undefined, 'user-42'); // what Dedupe.attach does for a new key
 * ```
 */
export class SharedSlot<I, O> extends EngineRequest<I, O> {
  /**
   * Its callers in arrival order: the creator, then those who joined (an array only once
   * someone joins). Those that left stay here, settled, until the slot settles.
   */
  readonly creator: EngineRequest<I, O>;
  /** The callers who joined after the creator, in arrival order. */
  joined: EngineRequest<I, O>[] | undefined = undefined;
  /** Members still waiting. */
  live = 1;
  /** Members still waiting that have no deadline: while there is one, the slot has none. */
  private withoutDeadline = 0;
  /** The latest deadline of any member (0: none yet). It may outlast a member who left: never too early. */
  private latestDeadline = 0;

  constructor(
    creator: EngineRequest<I, O>,
    /** Its `partitionBy` key and its `dedupeBy` key: where {@link Dedupe} keeps it while it waits or runs. */
    readonly partition: string | undefined,
    readonly key: unknown,
  ) {
    super(creator.input);
    this.id = creator.id;
    this.enqueuedAt = creator.enqueuedAt;
    this.creator = creator;
    const own = creator.extras;
    // The slot weighs what its input weighs; it has the creator's priority (its lane in the
    // queue), and runBatch sees the creator's context for it.
    if (own !== undefined) {
      const extras = (this.extras = new RequestExtras(undefined, 0));
      extras.weight = own.weight;
      extras.priority = own.priority;
      extras.context = own.context;
      extras.batchCap = own.batchCap;
    }
    this.counted(creator, 1);
  }

  /** The `i`th member (0: the creator); `undefined` past the last. */
  member(i: number): EngineRequest<I, O> | undefined {
    return i === 0 ? this.creator : this.joined?.[i - 1];
  }

  /** A caller joined (+1) or left (-1): the slot's deadline, for `ctx.deadlines`, is the latest of its members'. */
  counted(member: EngineRequest<I, O>, change: 1 | -1): void {
    const deadline = member.extras?.deadline ?? 0;
    if (deadline === 0) this.withoutDeadline += change;
    else if (deadline > this.latestDeadline) this.latestDeadline = deadline;
    const slotDeadline = this.withoutDeadline > 0 ? 0 : this.latestDeadline;
    if (this.extras !== undefined) this.extras.deadline = slotDeadline;
    else if (slotDeadline !== 0) (this.extras = new RequestExtras(undefined, 0)).deadline = slotDeadline;
  }

  /**
   * A caller joined while the slot waits: a redelivered one (a worker's, see
   * lib/core/redelivery.ts) caps the batch the slot runs in, as it would its own.
   */
  capped(member: EngineRequest<I, O>): void {
    const cap = member.extras?.batchCap ?? Infinity;
    if (cap < (this.extras?.batchCap ?? Infinity)) (this.extras ??= new RequestExtras(undefined, 0)).batchCap = cap;
  }

  /** Never called: a slot is not on `settled$`; its members are. */
  deliver(): void {}
}

/**
 * What {@link Dedupe} needs from its engine: the engine's own steps, so every rule stays written once.
 *
 * @example
 * ```ts
 * const host: SlotHost<I, O> = { counters, settle: (r, o, v, e) => engine.settle(r, o, v, e), vacate, release, leftBatch };
 * ```
 */
export interface SlotHost<I, O> {
  readonly counters: Counters;
  /** The engine's one settle. */
  settle(request: EngineRequest<I, O>, outcome: SettledState, value: O | undefined, reason: unknown): void;
  /** Takes an entry out of its queue or batch; `counted`: it is a caller, counted in queued/inFlight. */
  vacate(request: EngineRequest<I, O>, previous: number, place: object | undefined, counted: boolean): void;
  /** Lets go of a caller's deadline and abort listener, and hands it its outcome. */
  release(request: EngineRequest<I, O>): void;
  /** An entry of a running batch settled: let go of its promise slot, abandon the batch if nobody is left. */
  leftBatch(batch: Batch<I, O>, request: EngineRequest<I, O>): void;
}

/**
 * `dedupeBy`: identical inputs waiting or running share one {@link SharedSlot}, so the model
 * computes each once; every caller still settles on its own. The engine calls in at four
 * points (admission, dispatch, settling, and `room()`); without `dedupeBy` there is no
 * `Dedupe` and the engine's path is unchanged.
 *
 * - A call whose key has a slot waiting or running **joins** it (`stats().merged`), counted in
 *   `queued` or `inFlight` like the slot's other callers. Otherwise it opens a new slot, which
 *   the engine queues in its place. Keys are scoped to the `partitionBy` partition.
 * - A caller that leaves (abort, deadline, `run$` unsubscribe) settles alone. The slot is
 *   cancelled only when its last caller has left: taken out of its queue, or out of its batch,
 *   which is abandoned when nobody else waits for it.
 * - When the slot settles (its result, its `Error`, the batch's failure, a stop), every caller
 *   still waiting settles the same way, in arrival order. The slot is forgotten first: a call
 *   after that opens a new slot (no result is cached).
 *
 * @example
 * ```ts
 * const dedupe = new Dedupe(dedupeRule(config.name, config.dedupeBy), host); // one per engine
 * ```
 */
export class Dedupe<I, O> {
  /** Slots waiting or running, by partition key, then by share key. */
  private readonly scopes = new Map<string | undefined, Map<unknown, SharedSlot<I, O>>>();

  constructor(
    private readonly rule: ShareRule<I, O>,
    private readonly host: SlotHost<I, O>,
  ) {}

  /** The key of a call, or a {@link Refused} with the error that refuses the call. */
  keyOf(request: EngineRequest<I, O>): unknown {
    return this.rule.keyOf(request);
  }

  /**
   * Puts a call that was just queued (state and deadline set) in the slot for its key: joins a
   * slot that waits or runs, and returns `undefined` (nothing new to queue), or opens a new slot
   * and returns it, for the engine to queue and count in the call's place.
   */
  attach(request: EngineRequest<I, O>, partition: string | undefined, key: unknown): SharedSlot<I, O> | undefined {
    let scope = this.scopes.get(partition);
    if (scope === undefined) this.scopes.set(partition, (scope = new Map()));
    const slot = scope.get(key);
    if (slot === undefined) {
      const created = new SharedSlot<I, O>(request, partition, key);
      scope.set(key, created);
      request.place = created;
      return created;
    }
    const counters = this.host.counters;
    counters.merged++;
    (slot.joined ??= []).push(request);
    slot.live++;
    slot.counted(request, 1);
    request.place = slot;
    if (slot.state === RUNNING) {
      request.state = RUNNING;
      counters.inFlight++;
    } else {
      counters.queued++;
      slot.capped(request);
    }
    return undefined;
  }

  /**
   * A batch was sealed: its slots' callers are running now. Returns how many callers that is
   * (what moves from `queued` to `inFlight`).
   */
  dispatched(requests: readonly EngineRequest<I, O>[]): number {
    let callers = 0;
    for (const entry of requests) {
      // With dedupeBy every entry is a slot.
      const slot = entry as SharedSlot<I, O>;
      callers += slot.live;
      let member: EngineRequest<I, O> | undefined;
      for (let i = 0; (member = slot.member(i)) !== undefined; i++) if (member.state === QUEUED) member.state = RUNNING;
    }
    return callers;
  }

  /**
   * The engine's settle, for a slot or for a caller in one: the engine has set its state and
   * result and taken its place; this does the rest by the rules above. Returns false for a
   * call that never got a slot (refused at admission): the engine settles it as usual.
   */
  settle(request: EngineRequest<I, O>, previous: number, place: object | undefined): boolean {
    if (request instanceof SharedSlot) {
      this.settleSlot(request as SharedSlot<I, O>, previous, place);
      return true;
    }
    if (place instanceof SharedSlot) {
      this.leave(request, previous, place as SharedSlot<I, O>);
      return true;
    }
    return false;
  }

  /** The slot's outcome is in: forget it, take it out of its queue or batch, tell every caller still waiting. */
  private settleSlot(slot: SharedSlot<I, O>, previous: number, place: object | undefined): void {
    const host = this.host;
    this.forget(slot);
    host.vacate(slot, previous, place, false);
    const outcome = slot.state as SettledState;
    const result = slot.result;
    this.rule.settled?.(slot.key, outcome, result);
    // Settling a member may run its caller's code (run$ subscribers are told synchronously),
    // which may settle other members: look at each afresh.
    let member: EngineRequest<I, O> | undefined;
    for (let i = 0; (member = slot.member(i)) !== undefined; i++) {
      if (member.state < SUCCEEDED) host.settle(member, outcome, outcome === SUCCEEDED ? (result as O) : undefined, result);
    }
    if (previous === RUNNING) host.leftBatch(place as Batch<I, O>, slot);
  }

  /**
   * A caller settled: alone (its abort, its deadline, its unsubscribe), or with its slot. The
   * last one out cancels the slot, in the engine's order: out of its queue or batch before the
   * caller hears, the batch abandoned (if nobody else waits for it) after.
   */
  private leave(member: EngineRequest<I, O>, previous: number, slot: SharedSlot<I, O>): void {
    const host = this.host;
    const counters = host.counters;
    counters.count(member.state as SettledState);
    if (previous === QUEUED) counters.queued--;
    else counters.inFlight--;
    slot.live--;
    slot.counted(member, -1);
    let batch: Batch<I, O> | undefined;
    if (slot.live === 0 && slot.state < SUCCEEDED) {
      const slotWas = slot.state;
      const place = slot.place as object | undefined;
      slot.state = CANCELLED;
      slot.place = member.place; // the member's reason (it has settled): the slot's result from now on
      this.forget(slot);
      host.vacate(slot, slotWas, place, false);
      if (slotWas === RUNNING) batch = place as Batch<I, O>;
      this.rule.settled?.(slot.key, CANCELLED, member.result);
    }
    host.release(member);
    if (batch !== undefined) host.leftBatch(batch, slot);
  }

  /** A settled slot is no longer joined: the next call with its key opens a new one. */
  private forget(slot: SharedSlot<I, O>): void {
    const scope = this.scopes.get(slot.partition);
    if (scope === undefined || scope.get(slot.key) !== slot) return;
    scope.delete(slot.key);
    // A keyed partition's map goes when empty, like the partition; the one without a key stays.
    if (scope.size === 0 && slot.partition !== undefined) this.scopes.delete(slot.partition);
  }
}
