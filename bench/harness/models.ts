import type { BenchModel } from '../impls/types';

/**
 * The trivial async model of scenarios 1, 2 and 6: doubles each number, resolves in a microtask.
 * Every cost measured with it is the batcher's own.
 *
 * @example
 * ```ts
 * const model = trivialModel();
 * await model.runBatch([1, 2]); // [2, 4]
 * ```
 */
export function trivialModel(): BenchModel<number, number> {
  return {
    runBatch: async (inputs) => {
      const outputs = new Array<number>(inputs.length);
      for (let i = 0; i < inputs.length; i++) outputs[i] = inputs[i] * 2;
      return outputs;
    },
    runOne: async (input) => input * 2,
  };
}

/**
 * A simulated model with a real timer: a call of n items takes `overheadMs + perItemMs * n`
 * and, like one accelerator, it serves one call at a time (concurrent calls queue behind each
 * other). Counts calls and items so scenarios can report mean batch size.
 *
 * @example
 * ```ts
 * const model = new SerialTimerModel(5, 0.05);
 * await model.runBatch([1, 2, 3]); // ≈ 5.15 ms later: [2, 4, 6]
 * ```
 */
export class SerialTimerModel implements BenchModel<number, number> {
  calls = 0;
  items = 0;
  /** Multiplies every later call's time: 2 doubles it (another tenant on the same accelerator). */
  timeFactor = 1;
  /** Called with the inputs of each call as the model starts on it (after queueing behind earlier calls). */
  onStart: ((inputs: readonly number[]) => void) | undefined;
  /** Called with the inputs of each call as `runBatch` is invoked (before any queueing inside the model). */
  onReceive: ((inputs: readonly number[]) => void) | undefined;
  #busyUntil: Promise<void> = Promise.resolve();

  constructor(
    readonly overheadMs: number,
    readonly perItemMs: number,
  ) {}

  #stopped = false;
  #running: { readonly timer: ReturnType<typeof setTimeout>; readonly finish: () => void } | undefined;

  readonly runBatch = (inputs: readonly number[]): Promise<number[]> => {
    this.onReceive?.(inputs);
    const turn = this.#busyUntil.then(
      () =>
        new Promise<void>((resolve) => {
          if (this.#stopped) return resolve();
          this.onStart?.(inputs);
          const finish = (): void => {
            this.#running = undefined;
            resolve();
          };
          this.#running = { timer: setTimeout(finish, this.timeFactor * (this.overheadMs + this.perItemMs * inputs.length)), finish };
        }),
    );
    this.#busyUntil = turn;
    return turn.then(() => {
      this.calls++;
      this.items += inputs.length;
      return inputs.map((x) => x * 2);
    });
  };

  readonly runOne = async (input: number): Promise<number> => (await this.runBatch([input]))[0];

  /**
   * Ends the measurement: the call in progress and every queued or later call answer at once,
   * so the backlog an overloaded implementation leaves behind does not keep the process busy.
   *
   * @example
   * ```ts
   * const metrics = summarise(); model.stop(); await client.close();
   * ```
   */
  stop(): void {
    this.#stopped = true;
    const running = this.#running;
    if (running !== undefined) {
      clearTimeout(running.timer);
      running.finish();
    }
  }

  /** Items per second at full batches of `size` with no gaps: the model's ideal throughput. */
  idealThroughput(size: number): number {
    return (size * 1000) / (this.overheadMs + this.perItemMs * size);
  }
}
