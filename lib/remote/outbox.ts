/**
 * Collects what a producer sends during one turn of the event loop and writes it in one call
 * once the turn's callbacks have run (`setImmediate`; `setTimeout(0)` where there is none).
 *
 * The producer's engine seals a send per tick; callers that come back spread over a turn (each
 * I/O callback of a poll phase is a tick of its own, and so is a caller that yields once) would
 * otherwise write one broker round trip each, and a worker would see the first one alone and
 * gather the rest in its window. Written together they reach the stream in one append, and a
 * waiting worker pulls them as one batch. The write is deferred by the rest of the current
 * turn only.
 *
 * @example
 * ```ts
 * const outbox = new Outbox<RequestMessage>((messages) => void link.send(messages));
 * setImmediate(() => outbox.add([b])); // a caller that yielded once, queued before…
 * outbox.add([a]); // …this tick's send: a and b go in one write
 * ```
 */
export class Outbox<T> {
  private pending: T[] = [];
  private scheduled = false;

  /** @param write - called once per turn with everything added since the last write, in order. */
  constructor(private readonly write: (items: T[]) => void) {}

  /** Queues `items` for this turn's write. */
  add(items: readonly T[]): void {
    for (const item of items) this.pending.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    afterThisTurn(() => {
      this.scheduled = false;
      const items = this.pending;
      this.pending = [];
      if (items.length > 0) this.write(items);
    });
  }
}

// Private: a test (or a runtime) without setImmediate gets a zero timer.
function afterThisTurn(callback: () => void): void {
  if (typeof setImmediate === 'function') setImmediate(callback);
  else setTimeout(callback, 0);
}
