/**
 * Whether a failed publish or flush is worth retrying: the server is away, restarting, or (just
 * after a restart) still starting JetStream.
 *
 * @example
 * ```ts
 * if (attempt < 8 && isTransient(error)) retryLater();
 * ```
 */
export function isTransient(error: unknown): boolean {
  return /timeout|no responders|503|disconnect|reconnect|closed|jetstream is not enabled|JetStreamNotEnabled/i.test(`${(error as Error)?.name} ${(error as Error)?.message}`);
}
