import type { Redis } from 'ioredis';
import type { RequestMessage } from '../remote/transport.js';
import { pushCountedFields } from './entryFields.js';
import { mayRunScript } from './scriptCommand.js';

/**
 * The Lua script that appends a producer's tick of requests to their stream: KEYS[1] is the
 * stream, ARGV is, for each request, its field count and then its fields (name, value, …).
 * Each one is an `XADD … *` (an id from the broker, no MAXLEN: the stream is never trimmed),
 * in order; the script returns their ids in that order. A script runs whole, so a worker
 * blocked in `XREADGROUP` is handed all of them at once (as with MULTI/EXEC), and Redis
 * replicates its effects (the XADDs), not the script.
 *
 * @example
 * ```ts
 * await redis.eval(APPEND_SCRIPT, 1, 'rxb:double', '4', 'i', 'p1-1', 'b', 'x'); // ['1700000000000-0']
 * ```
 */
export const APPEND_SCRIPT = `local ids = {}
local i = 1
local n = #ARGV
while i <= n do
  local count = tonumber(ARGV[i])
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + count))
  i = i + 1 + count
end
return ids`;

/** The name the script is defined under on a connection (ioredis `defineCommand`). */
const APPEND_COMMAND = 'rxbAppendRequests';

type AppendCommand = Record<typeof APPEND_COMMAND, (key: string, ...args: (string | Buffer)[]) => Promise<string[]>>;

/**
 * Defines the append script on `connection` and tells whether its user may run it on `key`
 * ({@link mayRunScript}; the probe appends nothing). A user who may write the stream but not
 * read it (`%W~`) may not: a script may read the keys it declares.
 *
 * @example
 * ```ts
 * const scripts = await mayAppendByScript(connection, 'rxb:double');
 * const ids = scripts ? await appendByScript(connection, 'rxb:double', messages) : await appendInTransaction(…);
 * ```
 */
export function mayAppendByScript(connection: Redis, key: string): Promise<boolean> {
  return mayRunScript(connection, APPEND_COMMAND, APPEND_SCRIPT, key, []);
}

/**
 * Appends `messages` to the stream `key` with one call of the append script (defined on
 * `connection` by {@link mayAppendByScript}) and resolves with their entry ids, in order.
 * After a broker restart the script is sent again before the first call on the new socket, so
 * order holds across restarts as with MULTI/EXEC. A script cache emptied under a live
 * connection (`SCRIPT FLUSH`) costs the calls under way one more round trip each; they keep
 * their order among themselves, but a tick sent while they go round may land before them.
 *
 * @example
 * ```ts
 * const ids = await appendByScript(connection, 'rxb:double', messages); // ids[i] is messages[i]'s entry
 * ```
 */
export function appendByScript(connection: Redis, key: string, messages: readonly RequestMessage[]): Promise<string[]> {
  const args: (string | Buffer)[] = [key];
  for (const m of messages) pushCountedFields(args, m);
  return (connection as unknown as AppendCommand)[APPEND_COMMAND](...(args as [string, ...(string | Buffer)[]]));
}
