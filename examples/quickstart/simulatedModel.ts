/**
 * A stand-in for a real model: one call costs a fixed overhead plus a small cost per item
 * (5 ms + 0.1 ms per item by default), like a GPU kernel launch or an RPC round trip. Like a
 * real model it serves one call at a time: concurrent calls queue behind each other.
 */
export class SimulatedModel {
  /** How many times the model was invoked, and with how many items in all. */
  calls = 0;
  items = 0;
  private busyUntil: Promise<void> = Promise.resolve();

  constructor(
    readonly overheadMs = 5,
    readonly perItemMs = 0.1,
  ) {}

  /** Scores a batch: the score of x is x * 2. */
  async predictBatch(inputs: readonly number[]): Promise<number[]> {
    const turn = this.busyUntil.then(() => sleep(this.overheadMs + this.perItemMs * inputs.length));
    this.busyUntil = turn;
    await turn;
    this.calls++;
    this.items += inputs.length;
    return inputs.map((x) => x * 2);
  }

  /** Scores one input, as a model without batching would. */
  async predict(input: number): Promise<number> {
    const [score] = await this.predictBatch([input]);
    return score;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
