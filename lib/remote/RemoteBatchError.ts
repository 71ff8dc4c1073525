import { prefix } from '../errors/describe.js';

/**
 * Why a remote request failed on the worker side:
 * - `'batch-failed'`: the worker's `runBatch` threw or rejected (every caller of that batch gets it);
 * - `'item-failed'`: `runBatch` put an `Error` in this caller's slot;
 * - `'deliveries-exhausted'`: the request was delivered `maxDeliveries` times without an answer
 *   (its workers crashed or hung on it) and was given up;
 * - `'decode-failed'`: the worker could not decode the input, or the producer the result (codec mismatch);
 * - `'send-failed'`: the request could not be handed to the broker (refused, or not acknowledged in time);
 * - `'payload-too-large'`: the encoded input, request or result is over `maxPayloadBytes`
 *   (the producer's, refused at `run()`, or the worker's).
 *
 * @example
 * ```ts
 * const httpStatus = (kind: RemoteErrorKind): number => (kind === 'send-failed' ? 503 : kind === 'payload-too-large' ? 413 : kind === 'item-failed' ? 422 : 500);
 * ```
 */
export type RemoteErrorKind = 'batch-failed' | 'item-failed' | 'deliveries-exhausted' | 'decode-failed' | 'send-failed' | 'payload-too-large';

/**
 * A remote request failed for a reason that happened away from the caller: in the worker's
 * `runBatch`, in the codec, or in the broker. Carries the remote error's name and message.
 * (Timeouts, aborts, a full producer and a stopped producer reject with the same errors as the
 * local `Batcher`.)
 *
 * @example
 * ```ts
 * try { await scorer.run(x); }
 * catch (e) {
 *   if (e instanceof RemoteBatchError && e.kind === 'item-failed') reply.code(422).send(e.remoteMessage);
 * }
 * ```
 */
export class RemoteBatchError extends Error {
  /** Always `'RemoteBatchError'`. */
  override readonly name = 'RemoteBatchError';
  /** The remote batcher's name (its subject unless named). */
  readonly batcher: string;
  /** What went wrong, see {@link RemoteErrorKind}. */
  readonly kind: RemoteErrorKind;
  /** The `name` of the original error (e.g. `'TypeError'`). */
  readonly remoteName: string;
  /** The `message` of the original error. */
  readonly remoteMessage: string;
  /** The original stack, when the worker sent it. */
  readonly remoteStack: string | undefined;

  constructor(batcher: string, kind: RemoteErrorKind, remoteName: string, remoteMessage: string, remoteStack?: string) {
    super(`${prefix(batcher)} ${HEAD[kind]}: ${remoteName}: ${remoteMessage}${TAIL[kind]}`);
    this.batcher = batcher;
    this.kind = kind;
    this.remoteName = remoteName;
    this.remoteMessage = remoteMessage;
    this.remoteStack = remoteStack;
  }
}

const HEAD: Record<RemoteErrorKind, string> = {
  'batch-failed': "the worker's runBatch failed for the whole batch",
  'item-failed': "the worker's runBatch failed this input",
  'deliveries-exhausted': 'the request was given up',
  'decode-failed': 'a codec failed',
  'send-failed': 'the request could not be sent',
  'payload-too-large': 'a payload is over the limit',
};

const TAIL: Record<RemoteErrorKind, string> = {
  'batch-failed': '',
  'item-failed': '',
  'deliveries-exhausted': '. Workers crashed or hung on it; look for a poison input, or raise maxDeliveries / claimIdleMs.',
  'decode-failed': '. Producers and workers of one subject must use the same codec.',
  'send-failed': '. Check that the broker is reachable and has room (Redis maxmemory, NATS stream limits).',
  'payload-too-large': '. Send smaller inputs (e.g. a reference to data in object storage), or raise maxPayloadBytes on producers and workers alike.',
};
