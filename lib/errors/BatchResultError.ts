import { describeValue, prefix } from './describe.js';

/**
 * `runBatch` broke its contract: it did not return (or resolve to, or emit) an array with
 * exactly one result per input. Every caller in that batch receives this error, since
 * results cannot be matched to callers safely.
 *
 * @example
 * ```ts
 * const b = new Batcher({ maxBatchSize: 4, runBatch: (xs) => xs.slice(1) }); // one short
 * await b.run(1).catch((e) => e instanceof BatchResultError && e.expected === 1); // true
 * ```
 */
export class BatchResultError extends Error {
  /** Always `'BatchResultError'`, so the class survives serialisation (e.g. in logs). */
  override readonly name = 'BatchResultError';
  /** The `name` option of the batcher. */
  readonly batcher: string;
  /** How many results were expected: the batch size. */
  readonly expected: number;
  /** How many results came back, or `undefined` when the result was not an array at all. */
  readonly actual: number | undefined;

  constructor(batcher: string, expected: number, actual: number | undefined, got?: unknown, detail?: string) {
    super(
      detail !== undefined
        ? `${prefix(batcher)} runBatch must return one result per input (${expected} here), but ${detail}.`
        : actual === undefined
          ? `${prefix(batcher)} runBatch must return an array with one result per input (${expected} here), ` +
            `as a value, a Promise or an Observable, but it returned ${describeValue(got)}.`
          : `${prefix(batcher)} runBatch must return an array with one result per input, ` +
            `but returned ${actual} results for ${expected} inputs. Results are matched to callers by position.`,
    );
    this.batcher = batcher;
    this.expected = expected;
    this.actual = actual;
  }
}
