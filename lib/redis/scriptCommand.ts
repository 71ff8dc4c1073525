import type { Redis } from 'ioredis';

/**
 * Defines a Lua script as the command `name` on `connection` (ioredis `defineCommand`) and
 * tells whether its user may run it on `key`: runs it twice with `probe` (arguments that change
 * nothing), once as `EVAL` (ioredis sends the source the first time on each socket, so a
 * broker that restarted, or a new connection, gets it again before any `EVALSHA`, in order)
 * and once as `EVALSHA`. False when the broker refuses either (an ACL without
 * `+eval +evalsha`, or key rights that do not let the user read and write `key`: a script may
 * read the keys it declares) or has no scripting (renamed commands); other errors (the broker
 * away, …) reject.
 *
 * @example
 * ```ts
 * const scripts = await mayRunScript(connection, 'rxbFinishBatch', FINISH_SCRIPT, 'rxb:double', ['', '0', '0']);
 * ```
 */
export async function mayRunScript(connection: Redis, name: string, lua: string, key: string, probe: readonly string[]): Promise<boolean> {
  connection.defineCommand(name, { numberOfKeys: 1, lua });
  const run = (connection as unknown as Record<string, (key: string, ...args: string[]) => Promise<unknown>>)[name].bind(connection);
  try {
    await run(key, ...probe);
    await run(key, ...probe);
    return true;
  } catch (error) {
    if (/^NOPERM|unknown command/i.test(String((error as Error)?.message))) return false;
    throw error;
  }
}
