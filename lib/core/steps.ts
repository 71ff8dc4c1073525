/**
 * The vocabulary of streaming outputs: a *step* is what a streaming model produces at one
 * moment for every item of its batch, one slot per item, matched by position. A slot holds
 * a chunk for that item's caller, {@link skip} (nothing for it this step), {@link done} (its
 * output is finished: its stream completes), {@link last}`(chunk)` (a final chunk and done in
 * one), or an `Error` (that caller alone fails; its neighbours go on).
 */

/**
 * A step slot meaning "nothing for this item this step" (it is still going).
 *
 * @example
 * ```ts
 * yield [chunkA, skip, done]; // item 0 gets chunkA, item 1 nothing yet, item 2 is finished
 * ```
 */
export const skip: unique symbol = Symbol('rx-batcher.skip');

/**
 * A step slot meaning "this item is finished": its caller's stream completes (and `run()`
 * resolves with the chunks it got). Later slots for that item are ignored.
 *
 * @example
 * ```ts
 * yield texts.map((t, i) => (i === 0 ? done : t[step])); // item 0 finished before this step
 * ```
 */
export const done: unique symbol = Symbol('rx-batcher.done');

/** A final chunk: the item receives it, then is finished. Made by {@link last}. */
export class LastChunk<C> {
  constructor(
    /** The chunk delivered before the item finishes. */
    readonly chunk: C,
  ) {}
}

/**
 * A step slot holding an item's final chunk: delivered, then the item is finished, saving a
 * step of `done`.
 *
 * @example
 * ```ts
 * yield tokens.map((token, i) => (token === EOS ? done : isLastAllowed[i] ? last(token) : token));
 * ```
 */
export function last<C>(chunk: C): LastChunk<C> {
  return new LastChunk(chunk);
}

/**
 * One slot of a step: a chunk, {@link skip}, {@link done}, {@link last}`(chunk)`, or an
 * `Error` that fails that item's caller alone. (So a chunk cannot itself be an `Error`.)
 *
 * @example
 * ```ts
 * const slot: StepSlot<string> = Math.random() < 0.5 ? 'token' : skip;
 * ```
 */
export type StepSlot<C> = C | typeof skip | typeof done | LastChunk<C> | Error;

/**
 * One step of a streaming batch: a slot per item of the batch, in input order (an array or
 * any array-like object of exactly the batch's size; anything else fails the batch with a
 * `BatchResultError`).
 *
 * @example
 * ```ts
 * async function* runBatch(prompts: readonly string[]): AsyncIterable<Step<string>> {
 *   for (let i = 0; i < 3; i++) yield prompts.map((p) => `${p}#${i}`);
 *   // returning finishes every item still going
 * }
 * ```
 */
export type Step<C> = ArrayLike<StepSlot<C>>;

/**
 * What `runStep` learns about the step it is asked to take (continuous batching). The batch
 * is the same loop from step to step, but its members change: `states[i]` is the i-th item
 * active now, and per-item fields follow that order.
 *
 * @example
 * ```ts
 * const runStep = async (states: Gen[], ctx: StepContext) => {
 *   if (ctx.step === 0) console.log(`batch ${ctx.batchId} starts with ${ctx.size} items`);
 *   return model.decode(states, { signal: ctx.signal });
 * };
 * ```
 */
export interface StepContext {
  /** The continuous batch (one running loop), unique within the batcher, counting from 1. */
  readonly batchId: number;
  /** Steps this batch has taken before this one (0 for its first). */
  readonly step: number;
  /** How many items this step advances: `states.length` (1 ≤ size ≤ `maxBatchSize`). */
  readonly size: number;
  /** How many of `states` joined since the previous step: the last `joined` ones (all of them at step 0). */
  readonly joined: number;
  /** The `partitionBy` key shared by every item, `undefined` without `partitionBy`. */
  readonly partition: string | undefined;
  /**
   * Aborts when every caller of the batch has gone (the batch is then abandoned: its slot
   * frees and a late step is dropped) or on a non-draining `stop()`.
   */
  readonly signal: AbortSignal;
  /** For each item, its caller's `context` (`stream(x, { context })`), or `undefined`. */
  readonly contexts: readonly unknown[];
  /** For each item, when its caller gives up (scheduler clock, ms), or `Infinity`. */
  readonly deadlines: readonly number[];
}

/**
 * A model that advances every active item one step at a time (an autoregressive decoder: one
 * token per item per step). With it, a streaming batcher does continuous (iteration-level)
 * batching: between two steps it retires finished items and admits waiting requests into the
 * free places, up to `maxBatchSize`, so a long output never holds short ones hostage.
 *
 * - `init(input)` makes an item's state when it joins a batch (not when it is queued);
 *   throwing fails that caller alone. Keep it cheap: do heavy per-item work (a prompt's
 *   prefill) in `runStep`, where `ctx.joined` says which states are new.
 * - `runStep(states, ctx)` advances every state and returns a {@link Step} (one slot per state,
 *   in order): a chunk, {@link skip}, {@link done}, {@link last}, or an `Error` for that item
 *   alone. It may return it or a Promise of it; states may be mutated in place. Throwing (or
 *   rejecting, or a step of the wrong size) fails every item of that step.
 * - `release(state)`, optional: called once for each state when its item leaves the batch
 *   (finished, failed, or its caller went away), to free what the state holds.
 *
 * @example
 * ```ts
 * const model: ContinuousBatching<string, string, { text: string; at: number }> = {
 *   init: (text) => ({ text, at: 0 }),
 *   runStep: (states) => states.map((s) => (s.at < s.text.length ? s.text[s.at++] : done)),
 * };
 * ```
 */
export interface ContinuousBatching<I, C, S> {
  /** Makes an item's state when it joins a batch; throwing fails that caller alone. */
  init(input: I): S;
  /** Advances every state one step: one slot per state, in order (or a Promise of them). */
  runStep(states: S[], ctx: StepContext): Step<C> | PromiseLike<Step<C>>;
  /** Optional: frees what a state holds, once, when its item leaves the batch. */
  release?(state: S): void;
}
