import { BatchResultError } from '../errors/BatchResultError.js';
import type { BatchContext, BisectionStep, DispatchReason, RunBatch } from '../types.js';
import type { Batch } from './batch.js';
import type { Counters } from './counters.js';
import { invokeRunBatch } from './invokeRunBatch.js';
import { CALLER_GONE, FAILED_WITH_CALL, isLateResult, type LateResult } from './lateResult.js';

/*
 * `isolateFailures: 'bisect'`: a batch whose `runBatch` call failed as a whole is split and
 * retried until the failing input is alone.
 *
 * The rule, exactly:
 * 1. A failed call of n ≥ 2 inputs is cut into halves (⌈n/2⌉ first, ⌊n/2⌋ second, in batch
 *    order), run one after the other, each as its own `runBatch` call, in the batch's slot.
 *    Callers who have gone meanwhile are left out of a call; a half with nobody left is skipped.
 * 2. A half that returns results answers its callers at once (an `Error` in a slot still fails
 *    that caller only, a promise in a slot settles when it does).
 * 3. Exactly one half fails: that half is the failed call of step 1 (a failed call of one
 *    input has found its failing input: that caller fails with the model's error).
 * 4. Both halves fail: bisection stops at once, and every caller of each half fails with the
 *    error of its half's call. (The model is down, or each half holds a failing input: more
 *    retries cannot tell these apart cheaply, and would storm a model that is down.)
 * 5. A call that returns a result of the wrong length (`BatchResultError`) is a bug in
 *    `runBatch`, not a property of an input: its callers fail with it and it is not split.
 *
 * At each depth there are at most two calls and only one half goes deeper, so a failed batch of
 * n costs at most 2⌈log₂ n⌉ extra calls in all (one failing input is found in exactly that
 * many when it fails deterministically); a model that is down costs 2.
 *
 * The engine sees none of this: the failed batch "returns" one promise per caller (a late
 * result, lib/core/lateResult.ts), which this module settles; the batch keeps its slot until
 * the last has settled, and a caller who leaves (abort, deadline) is told through CALLER_GONE.
 */

/** What bisection needs from the engine. */
export interface BisectEnv<I, O> {
  readonly name: string;
  readonly runBatch: RunBatch<I, O>;
  readonly counters: Counters;
  /** `weigh` is set: a part's weight is the sum of its inputs' weights (else its size). */
  readonly weighed: boolean;
}

/** Whether a failed batch can be bisected: more than one input, a thrown error (not a bad result), not stopped. */
export function canBisect(batch: Batch<unknown, unknown>, error: unknown): boolean {
  return batch.requests.length > 1 && !(error instanceof BatchResultError) && !batch.signal.aborted;
}

/** Batches being bisected (their report says `failed`: their first call did). */
const bisected = new WeakSet<object>();

/** Whether this batch was bisected after its first call failed. */
export function wasBisected(batch: object): boolean {
  return bisected.has(batch);
}

/**
 * Starts bisecting `batch`, whose `runBatch` call failed with `error`, and returns one late
 * result per input for the engine to settle its callers from.
 *
 * @example
 * ```ts
 * if (config.isolateFailures === 'bisect' && canBisect(batch, error)) return this.batchReturned(batch, bisect(batch, error, env));
 * ```
 */
export function bisect<I, O>(batch: Batch<I, O>, error: unknown, env: BisectEnv<I, O>): ArrayLike<LateResult<O>> {
  bisected.add(batch);
  env.counters.bisections++;
  const slots = batch.requests.map(() => new Slot<O>());
  const positions = slots.map((_, i) => i);
  void Promise.resolve().then(() => run(batch, slots, positions, error, env));
  return slots;
}

/** One caller's answer: settled by bisection, or let go when its caller has gone. */
class Slot<O> implements LateResult<O> {
  gone = false;
  /** Told when this slot's caller goes (to stop a call nobody waits for any more). */
  onGone: (() => void) | undefined = undefined;
  [FAILED_WITH_CALL] = false;
  /** A promise the model put in this caller's result slot: told when the caller goes. */
  private inner: LateResult<unknown> | undefined = undefined;
  private settled = false;
  private resolveWith!: (value: O | PromiseLike<O>) => void;
  private rejectWith!: (reason: unknown) => void;
  private readonly promise = new Promise<O>((resolve, reject) => {
    this.resolveWith = resolve;
    this.rejectWith = reject;
  });

  then<A = O, B = never>(onfulfilled?: ((value: O) => A | PromiseLike<A>) | null, onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
    return this.promise.then(onfulfilled, onrejected);
  }

  [CALLER_GONE](): void {
    this.gone = true;
    this.inner?.[CALLER_GONE]?.();
    this.onGone?.();
  }

  /** Whether it still waits for an answer and its caller is still there. */
  waiting(): boolean {
    return !this.settled && !this.gone;
  }

  /** Its call returned: the value (or `Error`, or promise) in its slot. */
  answer(value: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (isLateResult(value)) {
      this.inner = value;
      if (this.gone) {
        value.then(undefined, noop);
        value[CALLER_GONE]?.();
      }
    }
    this.resolveWith(value as O);
  }

  /** Its call failed as a whole. */
  fail(error: unknown, wholeCall: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this[FAILED_WITH_CALL] = wholeCall;
    this.rejectWith(error);
  }
}

type CallOutcome = { ok: true; results: ArrayLike<unknown> } | { ok: false; error: unknown };

/** The bisection loop: at most one failed part at a time (rule 3), so it is a path down the halves. */
async function run<I, O>(batch: Batch<I, O>, slots: Slot<O>[], failedCall: number[], cause: unknown, env: BisectEnv<I, O>): Promise<void> {
  let call = 1;
  for (let depth = 1; ; depth++) {
    const live = failedCall.filter((i) => slots[i].waiting());
    if (live.length === 0) return;
    if (batch.signal.aborted) return failAll(slots, live, batch.signal.reason);
    if (failedCall.length === 1) return failAll(slots, live, cause); // found: a call of this input alone failed
    const cut = Math.ceil(live.length / 2);
    const failed: { half: number[]; error: unknown }[] = [];
    for (const half of [live.slice(0, cut), live.slice(cut)]) {
      const still = half.filter((i) => slots[i].waiting());
      if (still.length === 0 || batch.signal.aborted) continue;
      env.counters.bisectionCalls++;
      const outcome = await callPart(batch, slots, still, { call: ++call, depth, cause }, env);
      if (outcome.ok) answerAll(slots, still, outcome.results);
      else if (still.some((i) => !slots[i].gone)) failed.push({ half: still, error: outcome.error });
    }
    // Stopped without draining meanwhile: no more calls; what is left was not run.
    if (batch.signal.aborted) return failAll(slots, live, batch.signal.reason);
    if (failed.length === 0) return failAll(slots, live, cause); // nothing failed again: only callers already answered or gone remain
    if (failed.length === 2 || failed[0].error instanceof BatchResultError) {
      for (const { half, error } of failed) failAll(slots, half, error);
      return;
    }
    failedCall = failed[0].half;
    cause = failed[0].error;
  }
}

/** Fails every caller of `positions` still waiting, as with a failed call. */
function failAll<O>(slots: Slot<O>[], positions: readonly number[], error: unknown): void {
  for (const i of positions) if (slots[i].waiting()) slots[i].fail(error, true);
}

/** A part's call returned: each caller's slot gets its result. */
function answerAll<O>(slots: Slot<O>[], positions: readonly number[], results: ArrayLike<unknown>): void {
  for (let j = 0; j < positions.length; j++) {
    let value: unknown;
    try {
      value = results[j];
    } catch (error) {
      value = error instanceof Error ? error : new Error(String(error)); // a throwing getter fails this caller only
    }
    slots[positions[j]].answer(value);
  }
}

/** Runs `runBatch` on some of the batch's inputs, with a context of their own; resolves with its one outcome. */
function callPart<I, O>(batch: Batch<I, O>, slots: Slot<O>[], positions: number[], step: BisectionStep, env: BisectEnv<I, O>): Promise<CallOutcome> {
  return new Promise((resolve) => {
    const ctx = new PartContext(batch, positions, step, env.weighed);
    let inner: { unsubscribe(): void } | undefined;
    let done = false;
    const finish = (outcome: CallOutcome): void => {
      if (done) return;
      done = true;
      batch.signal.removeEventListener('abort', onAbort);
      for (const i of positions) slots[i].onGone = undefined;
      resolve(outcome);
    };
    // Nobody waits for this call any more (the batcher stopped without draining, or every
    // caller of the part has gone): its signal aborts, an Observable it returned is cancelled,
    // and whatever it returns later is dropped.
    const stop = (reason: unknown): void => {
      ctx.abort(reason);
      inner?.unsubscribe();
      finish({ ok: false, error: reason });
    };
    const onAbort = (): void => stop(batch.signal.reason);
    const onGone = (): void => {
      if (positions.every((i) => slots[i].gone)) stop(new DOMException('Every caller of this part of a bisected batch has gone (aborted or timed out).', 'AbortError'));
    };
    batch.signal.addEventListener('abort', onAbort);
    for (const i of positions) slots[i].onGone = onGone;
    const inputs = positions.map((i) => batch.requests[i].input);
    inner = invokeRunBatch(env.name, env.runBatch, inputs, ctx, {
      returned: (results) => finish({ ok: true, results }),
      failed: (error) => finish({ ok: false, error }),
    });
    if (done) inner?.unsubscribe();
  });
}

/** The {@link BatchContext} of one retried part: the batch's identity, the part's inputs. */
class PartContext implements BatchContext {
  readonly batchId: number;
  readonly reason: DispatchReason;
  readonly partition: string | undefined;
  readonly size: number;
  readonly weight: number;
  private readonly controller = new AbortController();

  constructor(
    private readonly batch: Batch<unknown, unknown>,
    private readonly positions: readonly number[],
    readonly bisection: BisectionStep,
    weighed: boolean,
  ) {
    this.batchId = batch.batchId;
    this.reason = batch.reason;
    this.partition = batch.partition;
    this.size = positions.length;
    let weight = 0;
    if (weighed) for (const i of positions) weight += batch.requests[i].extras?.weight ?? 0;
    this.weight = weighed ? weight : positions.length;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    this.controller.abort(reason);
  }

  get deadlines(): readonly number[] {
    return this.pick(this.batch.deadlines);
  }

  get contexts(): unknown[] {
    return this.pick(this.batch.contexts);
  }

  get priorities(): readonly number[] {
    return this.pick(this.batch.priorities);
  }

  private pick<T>(all: readonly T[]): T[] {
    return this.positions.map((i) => all[i]);
  }
}

function noop(): void {}
