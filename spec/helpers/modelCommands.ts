import type fc from 'fast-check';

/** What the model-based tests' shared commands act on: a world that runs, aborts and moves time. */
export interface ModelWorld {
  /** Counts commands, for failure messages. */
  step: number;
  /** Compares the system with the model after each command; throws on a difference. */
  check(): void | Promise<void>;
  run(timeoutMs: number | undefined, withSignal: boolean): void;
  abort(pick: number): void;
  advance(ms: number): void | Promise<void>;
}

/**
 * A fast-check command that acts on the world, then checks it. The local engine's model test
 * and the remote faces' one share it and the three commands below.
 *
 * @example
 * ```ts
 * class Flush extends Step<World> { act(w: World) { w.flush(); } toString() { return 'flush()'; } }
 * ```
 */
export abstract class Step<W extends ModelWorld> implements fc.AsyncCommand<object, W> {
  check(): boolean {
    return true;
  }
  async run(_: object, world: W): Promise<void> {
    world.step++;
    await this.act(world);
    await world.check();
  }
  abstract act(world: W): void | Promise<void>;
  abstract toString(): string;
}

/** `run(x)`, with or without its own timeout and an AbortSignal. */
export class Run<W extends ModelWorld> extends Step<W> {
  constructor(readonly timeoutMs: number | undefined, readonly withSignal: boolean) { super(); }
  act(w: W): void { w.run(this.timeoutMs, this.withSignal); }
  toString(): string { return `run(${this.timeoutMs ?? '-'}${this.withSignal ? ', signal' : ''})`; }
}

/** Aborts the signal of a call picked by index. */
export class Abort<W extends ModelWorld> extends Step<W> {
  constructor(readonly pick: number) { super(); }
  act(w: W): void { w.abort(this.pick); }
  toString(): string { return `abort(${this.pick})`; }
}

/** Moves virtual time. */
export class Advance<W extends ModelWorld> extends Step<W> {
  constructor(readonly ms: number) { super(); }
  act(w: W): void | Promise<void> { return w.advance(this.ms); }
  toString(): string { return `advance(${this.ms})`; }
}
