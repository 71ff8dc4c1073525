import { prefix } from './describe.js';

/**
 * A `for await` reader of `batcher.stream(x)` fell more than `maxBufferedChunks` chunks
 * behind the model, so its stream was ended with this error (its item leaves the batch, and
 * the chunks read so far stay read). The model never waits for one slow reader: the other
 * callers of its batch would wait too.
 *
 * @example
 * ```ts
 * try { for await (const token of batcher.stream(prompt)) await slowWrite(token); }
 * catch (e) { if (e instanceof StreamBufferFullError) console.warn(`fell ${e.limit} chunks behind`); }
 * ```
 */
export class StreamBufferFullError extends Error {
  /** Always `'StreamBufferFullError'`, so the class survives serialisation (e.g. in logs). */
  override readonly name = 'StreamBufferFullError';
  /** The `name` option of the batcher. */
  readonly batcher: string;
  /** The `maxBufferedChunks` that was exceeded. */
  readonly limit: number;

  constructor(batcher: string, limit: number) {
    super(
      `${prefix(batcher)} stream(): the reader fell more than ${limit} chunks behind (maxBufferedChunks), so this stream was ended. ` +
        'The model does not wait for one slow reader while the rest of its batch waits: read faster (do slow work outside the loop), ' +
        'raise maxBufferedChunks, or subscribe to the Observable and buffer or drop chunks yourself.',
    );
    this.batcher = batcher;
    this.limit = limit;
  }
}
