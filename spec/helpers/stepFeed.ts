/**
 * A stream of steps a test drives by hand, as an AsyncIterable (what an async generator
 * returns): `push(step)` hands the next step to whoever pulls, `end()` finishes it, `fail(e)`
 * makes the next pull reject. `returned` counts `return()` calls (the consumer stopped early),
 * `pulls` the steps asked for.
 *
 * @example
 * ```ts
 * const feed = new StepFeed<string>();
 * const batcher = new StreamingBatcher({ maxBatchSize: 4, runBatch: () => feed });
 * feed.push(['a', done]);
 * ```
 */
export class StepFeed<C> implements AsyncIterable<ArrayLike<unknown>>, AsyncIterator<ArrayLike<unknown>> {
  returned = 0;
  pulls = 0;
  private queue: ({ step: ArrayLike<unknown> } | { end: true } | { error: unknown })[] = [];
  private waiting: { resolve(r: IteratorResult<ArrayLike<unknown>>): void; reject(e: unknown): void } | undefined;
  private finished = false;

  [Symbol.asyncIterator](): AsyncIterator<ArrayLike<unknown>> {
    return this;
  }

  push(step: ArrayLike<C | symbol | Error | object>): void {
    this.offer({ step });
  }

  end(): void {
    this.offer({ end: true });
  }

  fail(error: unknown): void {
    this.offer({ error });
  }

  next(): Promise<IteratorResult<ArrayLike<unknown>>> {
    this.pulls++;
    const item = this.queue.shift();
    if (item !== undefined) return Promise.resolve().then(() => this.resultOf(item));
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<ArrayLike<unknown>>> {
    this.returned++;
    this.finished = true;
    this.waiting?.resolve({ done: true, value: undefined });
    this.waiting = undefined;
    return Promise.resolve({ done: true, value: undefined });
  }

  private offer(item: { step: ArrayLike<unknown> } | { end: true } | { error: unknown }): void {
    const waiting = this.waiting;
    if (waiting === undefined) {
      this.queue.push(item);
      return;
    }
    this.waiting = undefined;
    try {
      waiting.resolve(this.resultOf(item));
    } catch (error) {
      waiting.reject(error);
    }
  }

  private resultOf(item: { step: ArrayLike<unknown> } | { end: true } | { error: unknown }): IteratorResult<ArrayLike<unknown>> {
    if ('step' in item) return { done: false, value: item.step };
    if ('end' in item) {
      this.finished = true;
      return { done: true, value: undefined };
    }
    throw item.error;
  }
}
