import type { RequestMessage } from '../remote/transport.js';

/**
 * A request as stream entry fields: i(d), r(eply to), d(eadline), c(ontext), p(riority), m(ac), b(ody).
 * Every name is one letter, and `i` always comes first.
 *
 * @example
 * ```ts
 * entryFields({ id: 'p1-1', replyTo: 'rxb:reply:ab', body }); // ['i', 'p1-1', 'r', 'rxb:reply:ab', 'b', <body>]
 * ```
 */
export function entryFields(m: RequestMessage): (string | Buffer)[] {
  const fields: (string | Buffer)[] = ['i', m.id, 'r', m.replyTo];
  pushOptionalFields(fields, m);
  return fields;
}

/**
 * Appends one request to the flat argument list of the append script: its field count, then
 * its fields as {@link entryFields} has them, without an array of its own.
 *
 * @example
 * ```ts
 * const args: (string | Buffer)[] = [];
 * for (const m of messages) pushCountedFields(args, m); // ['6', 'i', 'p1-1', 'r', …, 'b', <body>, '6', …]
 * ```
 */
export function pushCountedFields(args: (string | Buffer)[], m: RequestMessage): void {
  const at = args.length;
  args.push('', 'i', m.id, 'r', m.replyTo);
  pushOptionalFields(args, m);
  args[at] = String(args.length - at - 1);
}

function pushOptionalFields(fields: (string | Buffer)[], m: RequestMessage): void {
  if (m.deadline !== undefined) fields.push('d', String(m.deadline));
  if (m.context !== undefined) fields.push('c', toBuffer(m.context));
  if (m.priority !== undefined) fields.push('p', String(m.priority));
  if (m.mac !== undefined) fields.push('m', toBuffer(m.mac));
  fields.push('b', toBuffer(m.body));
}

/**
 * The bytes as a Buffer, without a copy.
 *
 * @example
 * ```ts
 * connection.publish(channel, toBuffer(frame));
 * ```
 */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
