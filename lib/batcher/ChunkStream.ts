import { Observable } from 'rxjs';
import { StreamBufferFullError } from '../errors/StreamBufferFullError.js';
import { prefix } from '../errors/describe.js';

/** Where a stream's chunks go: its subscriber, or the buffer of a `for await` reader. */
export interface ChunkSink<C> {
  next(chunk: C): void;
  error(reason: unknown): void;
  complete(): void;
}

/**
 * Opens one stream (submits its request) and returns how to cancel it: with `reason`, or an
 * `AbortError` saying the reader left. Cancelling a settled stream does nothing.
 */
export type OpenStream<C> = (sink: ChunkSink<C>) => (reason?: unknown) => void;

/**
 * One caller's chunks, as they are produced: an Observable (cold: subscribing sends the
 * request, unsubscribing cancels it) that is also an AsyncIterable, so `for await` works.
 * What `streamingBatcher.stream(input)` returns; see its class comment for buffering and exits.
 *
 * @example
 * ```ts
 * const tokens: ChunkStream<string> = llm.stream('Once upon a time');
 * for await (const token of tokens) process.stdout.write(token);
 * ```
 */
export type ChunkStream<C> = Observable<C> & AsyncIterable<C>;

/**
 * One caller's chunks, as they are produced: an Observable (cold: subscribing sends the
 * request, unsubscribing cancels it) that is also an AsyncIterable, so `for await` works.
 *
 * - **Observable**: each chunk is handed to your subscriber the moment the model produces it;
 *   nothing is buffered here (buffer or drop with your own operators if you are slow).
 * - **for await**: chunks wait in a buffer until you read them, at most `maxBufferedChunks`
 *   of them; a reader further behind than that gets a {@link StreamBufferFullError} (its item
 *   leaves the batch, so it cannot hold its neighbours back). Leaving the loop early
 *   (`break`, `return`, a throw) cancels the request at once.
 *
 * Each subscription, and each `for await`, is a request of its own.
 *
 * @example
 * ```ts
 * for await (const token of batcher.stream('Once upon a time')) process.stdout.write(token);
 * batcher.stream('Hello').subscribe({ next: (t) => res.write(t), complete: () => res.end() });
 * ```
 */
export class ChunkStreamImpl<C> extends Observable<C> implements AsyncIterable<C> {
  readonly #open: OpenStream<C>;
  readonly #limit: number;
  readonly #name: string;

  /**
   * @param open - sends the request and returns how to cancel it
   * @param maxBufferedChunks - how far a `for await` reader may fall behind
   * @param name - the batcher's name, for errors
   */
  constructor(open: OpenStream<C>, maxBufferedChunks: number, name: string) {
    super((subscriber) => {
      const cancel = open({
        next: (chunk) => subscriber.next(chunk),
        error: (reason) => subscriber.error(reason),
        complete: () => subscriber.complete(),
      });
      return () => cancel();
    });
    this.#open = open;
    this.#limit = maxBufferedChunks;
    this.#name = name;
  }

  /** Reads the chunks with `for await`; see the class comment for the buffer and early exits. */
  [Symbol.asyncIterator](): AsyncIterator<C> {
    return new BufferedReader<C>(this.#open, this.#limit, this.#name);
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The `for await` side: chunks wait here until read; the request is sent on the first `next()`. */
class BufferedReader<C> implements AsyncIterator<C> {
  private buffer: C[] = [];
  private head = 0;
  private ended = false;
  private failure: { reason: unknown } | undefined = undefined;
  private waiting: { resolve(result: IteratorResult<C>): void; reject(reason: unknown): void } | undefined = undefined;
  private cancel: ((reason?: unknown) => void) | undefined = undefined;

  constructor(
    private readonly open: OpenStream<C>,
    private readonly limit: number,
    private readonly name: string,
  ) {}

  next(): Promise<IteratorResult<C>> {
    if (this.cancel === undefined && !this.ended) {
      this.cancel = this.open({ next: (chunk) => this.push(chunk), error: (reason) => this.fail(reason), complete: () => this.finish() });
    }
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head];
      this.buffer[this.head++] = undefined as C;
      if (this.head === this.buffer.length) {
        this.buffer = [];
        this.head = 0;
      }
      return Promise.resolve({ done: false, value });
    }
    if (this.failure !== undefined) {
      const { reason } = this.failure;
      this.failure = undefined;
      this.ended = true;
      return Promise.reject(reason);
    }
    if (this.ended) return Promise.resolve(DONE);
    return new Promise<IteratorResult<C>>((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  /** The loop was left early: the request is cancelled at once. */
  return(): Promise<IteratorResult<C>> {
    if (!this.ended) {
      this.ended = true;
      this.cancel?.(new DOMException(`${prefix(this.name)} the for await loop over stream() ended early.`, 'AbortError'));
    }
    this.buffer = [];
    this.head = 0;
    this.failure = undefined;
    return Promise.resolve(DONE);
  }

  // The sink side: what the request hands over.

  private push(value: C): void {
    if (this.ended) return;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      waiting.resolve({ done: false, value });
      return;
    }
    if (this.buffer.length - this.head >= this.limit) {
      // Too far behind: end this stream (its item leaves the batch); what was buffered is still read first.
      this.cancel!(new StreamBufferFullError(this.name, this.limit));
      return;
    }
    this.buffer.push(value);
  }

  private fail(reason: unknown): void {
    if (this.ended) return;
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      this.ended = true;
      waiting.reject(reason);
    } else {
      this.failure = { reason };
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(DONE);
  }
}
