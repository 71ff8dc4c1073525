import { done, last, LastChunk, skip, type BatchContext, type ContinuousBatching, type Step } from 'rx-batcher';

/**
 * What a client asks the simulated generator for: a prompt and how many tokens to produce.
 *
 * @example
 * ```ts
 * const request: GenerateRequest = { prompt: 'Once upon a time', maxTokens: 30 };
 * ```
 */
export interface GenerateRequest {
  readonly prompt: string;
  /** How many tokens this output has (a real model stops at an end token; here the client says). */
  readonly maxTokens: number;
}

/** One output in progress: the generator's per-item state. */
export interface Generation {
  readonly request: GenerateRequest;
  /** Tokens produced so far. */
  produced: number;
  /** Where the pseudo-random words of this output come from (seeded by the prompt). */
  seed: number;
}

/**
 * Options of {@link SimulatedGenerator}.
 *
 * @example
 * ```ts
 * const options: GeneratorOptions = { stepMs: 5, perItemMs: 0.05 };
 * ```
 */
export interface GeneratorOptions {
  /** What one step costs whatever the batch: the weights read once per step. @default 5 */
  readonly stepMs?: number;
  /** What each active item adds to a step. @default 0.05 */
  readonly perItemMs?: number;
  /** How a step waits out its cost (tests pass a virtual clock). @default a real timer */
  readonly sleep?: (ms: number) => Promise<void>;
}

const WORDS = ['the', 'model', 'writes', 'one', 'token', 'per', 'step', 'and', 'every', 'caller', 'reads', 'its', 'own', 'stream', 'while', 'others', 'join', 'leave'];

/**
 * A simulated autoregressive model on an accelerator: each step advances every active output by
 * one token and takes `stepMs + perItemMs × active` (sleeping, not computing, as a GPU call
 * would leave the CPU free). Two ways to drive it:
 *
 * - {@link continuous}: for `new StreamingBatcher({ continuous })`: items join and leave
 *   between steps (continuous batching);
 * - {@link runBatch}: for `new StreamingBatcher({ runBatch })`: one batch runs until its
 *   longest output is finished (whole-batch streaming); finished items cost nothing more.
 *
 * Tokens are pseudo-random words seeded by the prompt: the same request always produces the
 * same text, batched or not.
 *
 * @example
 * ```ts
 * const generator = new SimulatedGenerator();
 * const llm = new StreamingBatcher<GenerateRequest, string>({ maxBatchSize: 64, continuous: generator.continuous });
 * for await (const token of llm.stream({ prompt: 'Hello', maxTokens: 5 })) process.stdout.write(token);
 * ```
 */
export class SimulatedGenerator {
  /** Steps taken. */
  steps = 0;
  /** Items advanced, summed over steps (÷ steps = mean active items per step). */
  itemSteps = 0;
  /** Outputs whose state was released (finished, failed, or their caller left). */
  released = 0;
  /** The requests of outputs released before they were finished (their caller left). */
  readonly cutShort: GenerateRequest[] = [];
  /** Steps taken from now on cost nothing (to end a measurement quickly). */
  fastForward = false;
  readonly #stepMs: number;
  readonly #perItemMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: GeneratorOptions = {}) {
    this.#stepMs = options.stepMs ?? 5;
    this.#perItemMs = options.perItemMs ?? 0.05;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** What a step of `active` items costs, in ms. */
  stepCost(active: number): number {
    return this.#stepMs + this.#perItemMs * active;
  }

  /** Continuous batching: the model advances whoever is active now, one token each. */
  readonly continuous: ContinuousBatching<GenerateRequest, string, Generation> = {
    init: (request) => {
      if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1) throw new RangeError(`maxTokens must be an integer ≥ 1, got ${request.maxTokens}`);
      return { request, produced: 0, seed: hash(request.prompt) };
    },
    runStep: async (states) => {
      await this.#step(states.length);
      return states.map((state) => this.#next(state));
    },
    release: (state) => {
      this.released++;
      if (state.produced < state.request.maxTokens) this.cutShort.push(state.request);
    },
  };

  /** Whole-batch streaming: the batch runs until its longest output is done. */
  readonly runBatch = (requests: readonly GenerateRequest[], ctx: BatchContext): AsyncIterable<Step<string>> => {
    const states = requests.map((request) => ({ request, produced: 0, seed: hash(request.prompt) }));
    return this.#wholeBatch(states, ctx);
  };

  async *#wholeBatch(states: Generation[], ctx: BatchContext): AsyncGenerator<Step<string>> {
    let active = states.length;
    while (active > 0 && !ctx.signal.aborted) {
      await this.#step(active);
      yield states.map((state) => {
        if (state.produced >= state.request.maxTokens) return skip;
        const slot = this.#next(state);
        if (slot instanceof LastChunk || slot === done) active--;
        return slot;
      });
    }
  }

  async #step(active: number): Promise<void> {
    this.steps++;
    this.itemSteps += active;
    await this.#sleep(this.fastForward ? 0 : this.stepCost(active));
  }

  /** The state's next token: plain, or `last(token)` for its final one. */
  #next(state: Generation): string | LastChunk<string> | typeof done {
    if (state.produced >= state.request.maxTokens) return done;
    const token = nextToken(state);
    return state.produced === state.request.maxTokens ? last(token) : token;
  }
}

/**
 * The text the generator produces for a request, computed without it: what a client that read
 * the whole stream must have received.
 *
 * @example
 * ```ts
 * expectedText({ prompt: 'Hi', maxTokens: 3 }); // three words, e.g. 'step one the'
 * ```
 */
export function expectedText(request: GenerateRequest): string {
  const state: Generation = { request, produced: 0, seed: hash(request.prompt) };
  let text = '';
  while (state.produced < request.maxTokens) text += nextToken(state);
  return text;
}

function nextToken(state: Generation): string {
  state.seed = (Math.imul(state.seed, 1103515245) + 12345) >>> 0;
  const token = `${state.produced === 0 ? '' : ' '}${WORDS[state.seed % WORDS.length]}`;
  state.produced++;
  return token;
}

/** FNV-1a: a small, stable hash of the prompt. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
