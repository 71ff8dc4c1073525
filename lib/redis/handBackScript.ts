import type { Redis } from 'ioredis';
import { mayRunScript } from './scriptCommand.js';

/**
 * The Lua script that hands entries back for a consumer, but only those it still owns:
 * KEYS[1] is the stream, ARGV[1] the consumer group, ARGV[2] the consumer, ARGV[3] the idle
 * time to give them (ms), and the rest the entry ids. For each id it asks `XPENDING … <id> <id>
 * 1 <consumer>` (the entry, if pending for that consumer) and `XCLAIM`s those with `IDLE` and
 * `JUSTID` (which counts no delivery; a thousand at a time), so that the next reclaim by any worker takes them. An
 * entry another worker took over meanwhile (or acknowledged) is left alone: a late holder's
 * hand-back must not make the new holder's entry look idle, or hand it to a third worker while
 * it runs. With an idle time of 0 the same script renews a claim, again only where the entry is
 * still the consumer's (a late holder must not take an entry over from the worker running it).
 * Returns how many it handed back (or renewed).
 *
 * @example
 * ```ts
 * await redis.eval(HAND_BACK_SCRIPT, 1, 'rxb:double', 'workers', 'host:42:ab12cd34', '60000', '1700000000000-0');
 * ```
 */
export const HAND_BACK_SCRIPT = `local owned = {}
for i = 4, #ARGV do
  local row = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #row > 0 then owned[#owned + 1] = ARGV[i] end
end
for from = 1, #owned, 1000 do
  local args = { 'XCLAIM', KEYS[1], ARGV[1], ARGV[2], '0' }
  for i = from, math.min(from + 999, #owned) do args[#args + 1] = owned[i] end
  args[#args + 1] = 'IDLE'
  args[#args + 1] = ARGV[3]
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return #owned`;

/** The name the script is defined under on a connection (ioredis `defineCommand`). */
const HAND_BACK_COMMAND = 'rxbHandBack';

type HandBackCommand = Record<typeof HAND_BACK_COMMAND, (key: string, ...args: string[]) => Promise<number>>;

/**
 * Defines the hand-back script on `connection` and tells whether its user may run it on `key`
 * (`mayRunScript`; the probe names no entry, so it hands nothing back).
 *
 * @example
 * ```ts
 * const owned = (await mayHandBackByScript(connection, 'rxb:double')) ? handBackByScript : handBackChecked;
 * ```
 */
export function mayHandBackByScript(connection: Redis, key: string): Promise<boolean> {
  return mayRunScript(connection, HAND_BACK_COMMAND, HAND_BACK_SCRIPT, key, ['', '', '0']);
}

/**
 * Hands the entries `ids` of the stream `key` back to the consumer group `group` (they look
 * idle for `idleMs`, so the next reclaim takes them), each only while `consumer` still owns
 * it, atomically, with one call of the hand-back script (defined on `connection` by
 * {@link mayHandBackByScript}). Resolves to how many it handed back.
 *
 * @example
 * ```ts
 * await handBackByScript(connection, 'rxb:double', 'workers', consumer, 60_000, ['1700000000000-0']);
 * ```
 */
export function handBackByScript(connection: Redis, key: string, group: string, consumer: string, idleMs: number, ids: readonly string[]): Promise<number> {
  return (connection as unknown as HandBackCommand)[HAND_BACK_COMMAND](key, group, consumer, String(idleMs), ...ids);
}

/**
 * The same without a script (for a user that may not run one): asks `XPENDING` which of `ids`
 * `consumer` still owns, then `XCLAIM`s those. Not atomic: another worker that takes an entry
 * over between the two commands loses it to this hand-back (a window of one round trip, where
 * before there was no check at all). Resolves to how many it handed back.
 *
 * @example
 * ```ts
 * await handBackChecked(connection, 'rxb:double', 'workers', consumer, 60_000, ['1700000000000-0']);
 * ```
 */
export async function handBackChecked(connection: Redis, key: string, group: string, consumer: string, idleMs: number, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const pipeline = connection.pipeline();
  for (const id of ids) pipeline.xpending(key, group, id, id, 1, consumer);
  const rows = (await pipeline.exec()) ?? [];
  const owned: string[] = [];
  rows.forEach(([error, result], i) => {
    if (error !== null) throw error;
    if (Array.isArray(result) && result.length > 0) owned.push(ids[i]);
  });
  if (owned.length > 0) await connection.xclaim(key, group, consumer, 0, ...owned, 'IDLE', idleMs, 'JUSTID');
  return owned.length;
}
