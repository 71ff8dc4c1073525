import type { Redis } from 'ioredis';
import type { ReplyFrame } from '../remote/transport.js';
import { PACKET_FIELD, toBuffer } from './entryFields.js';
import { mayRunScript } from './scriptCommand.js';

/**
 * The Lua script that finishes a worker's batch: KEYS[1] is the stream, ARGV[1] the consumer
 * group, ARGV[2] how many reply frames follow (channel, frame, …), ARGV[3] how many request
 * packets follow them (requests moved out of entries, to append again), and the rest the entry
 * ids to acknowledge. It PUBLISHes every frame, `XADD`s every packet (`q <packet>`, as a
 * producer does), then `XACK`s and `XDEL`s the ids (a thousand at a time: Lua unpacks at most
 * a few thousand values at once). A PUBLISH or XADD the broker refuses (an ACL) raises an
 * error that ends the script before the acknowledgement: nothing is acknowledged unanswered,
 * and no entry is acknowledged before the requests moved out of it are in the stream again.
 *
 * @example
 * ```ts
 * await redis.eval(FINISH_SCRIPT, 1, 'rxb:double', 'workers', '1', '0', 'rxb:reply:ab', frame, '1700000000000-0');
 * ```
 */
export const FINISH_SCRIPT = `local frames = tonumber(ARGV[2])
local packets = tonumber(ARGV[3])
for i = 4, 3 + 2 * frames, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
local first = 4 + 2 * frames
for i = first, first + packets - 1 do
  redis.call('XADD', KEYS[1], '*', '${PACKET_FIELD}', ARGV[i])
end
local n = #ARGV
for from = first + packets, n, 1000 do
  local to = math.min(from + 999, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, from, to))
  redis.call('XDEL', KEYS[1], unpack(ARGV, from, to))
end
return frames`;

/** The name the script is defined under on a connection (ioredis `defineCommand`). */
const FINISH_COMMAND = 'rxbFinishBatch';

type FinishCommand = Record<typeof FINISH_COMMAND, (key: string, ...args: (string | Buffer)[]) => Promise<number>>;

/**
 * Defines the finish script on `connection` and tells whether its user may run it on `key`
 * ({@link mayRunScript}; the probe publishes, appends and acknowledges nothing).
 *
 * @example
 * ```ts
 * if (await mayFinishByScript(connection, 'rxb:double')) await finishByScript(connection, 'rxb:double', 'workers', frames, [], ids);
 * ```
 */
export function mayFinishByScript(connection: Redis, key: string): Promise<boolean> {
  return mayRunScript(connection, FINISH_COMMAND, FINISH_SCRIPT, key, ['', '0', '0']);
}

/**
 * Publishes `frames`, appends `packets` (request packets, each as one entry), then
 * acknowledges and deletes the entries `ids` of the stream `key` in the consumer group
 * `group`, with one call of the finish script (defined on `connection` by
 * {@link mayFinishByScript}). Rejects, with nothing acknowledged, if a publish or an append is refused.
 *
 * @example
 * ```ts
 * await finishByScript(connection, 'rxb:double', 'workers', [{ replyTo, frame }], [], ['1700000000000-0']);
 * ```
 */
export async function finishByScript(
  connection: Redis, key: string, group: string, frames: readonly ReplyFrame[], packets: readonly Uint8Array[], ids: readonly string[],
): Promise<void> {
  const args: (string | Buffer)[] = [key, group, String(frames.length), String(packets.length)];
  for (const { replyTo, frame } of frames) args.push(replyTo, toBuffer(frame));
  for (const packet of packets) args.push(toBuffer(packet));
  for (const id of ids) args.push(id);
  await (connection as unknown as FinishCommand)[FINISH_COMMAND](...(args as [string, ...(string | Buffer)[]]));
}
