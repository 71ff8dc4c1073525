import { Redis } from 'ioredis';
import { entryRequests } from '../../lib/redis/entryFields';
import { finishByScript, mayFinishByScript } from '../../lib/redis/finishScript';
import { handBackByScript, handBackChecked, mayHandBackByScript } from '../../lib/redis/handBackScript';
import { encodeRequestPacket } from '../../lib/remote/requestPacket';
import type { RequestMessage } from '../../lib/remote/transport';
import { startRedis, type TestBroker } from './brokers';

// The worker's finish script (reply, append moved requests again and acknowledge in one
// EVALSHA), against a private redis-server started from the binary for this file. A missing binary fails these tests; it never skips them.
let broker: TestBroker;
let admin: Redis;
beforeAll(async () => {
  broker = await startRedis();
  admin = new Redis(broker.url);
  admin.on('error', () => undefined); // the restart below drops it: ioredis reconnects
});
afterAll(async () => {
  admin?.disconnect();
  await broker?.stop();
});

let streams = 0;
const freshKey = (): string => `rxb:append-${process.pid}-${++streams}`;
const connections: Redis[] = [];
const connect = (options: { username?: string; password?: string } = {}): Redis => {
  // Waits through the restart below; the test's own timeout bounds it.
  const connection = new Redis(broker.url, { maxRetriesPerRequest: null, retryStrategy: () => 20, ...options });
  connection.on('error', () => undefined); // a restart drops it: ioredis reconnects
  connections.push(connection);
  return connection;
};
afterEach(() => {
  for (const c of connections.splice(0)) c.disconnect();
});

const message = (id: string, extra: Partial<RequestMessage> = {}): RequestMessage => ({ id, replyTo: 'rxb:reply:ab', body: Buffer.from(`body of ${id}`), ...extra });
/** What INFO says about the broker since it started: `calls` of a command, or how often an error prefix was answered. */
const info = async (): Promise<string> => admin.info('all');
const calls = (text: string, command: string): number => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
const errors = (text: string, prefix: string): number => Number(new RegExp(`^errorstat_${prefix}:count=(\\d+)`, 'm').exec(text)?.[1] ?? 0);

describe('Redis finish script', () => {
  /** A stream with `count` entries read by one consumer of the group 'workers': their ids. */
  const delivered = async (key: string, count: number): Promise<string[]> => {
    await admin.xgroup('CREATE', key, 'workers', '0', 'MKSTREAM');
    const pipeline = admin.pipeline();
    for (let i = 0; i < count; i++) pipeline.xadd(key, '*', 'i', `r${i}`);
    await pipeline.exec();
    const read = (await admin.xreadgroup('GROUP', 'workers', 'w1', 'COUNT', count, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    return read[0][1].map(([id]) => id);
  };
  const pending = async (key: string): Promise<number> => Number(((await admin.xpending(key, 'workers')) as [number])[0]);

  it('publishes every frame, in order, then acknowledges and deletes the entries, thousands at once too', async () => {
    const key = freshKey();
    const ids = await delivered(key, 9000); // more than Lua unpacks at once (8000)
    const connection = connect();
    expect(await mayFinishByScript(connection, key)).toBe(true);
    expect(await pending(key)).toBe(9000); // the check acknowledges nothing
    const listener = connect();
    const heard: string[] = [];
    listener.on('messageBuffer', (channel: Buffer, message: Buffer) => heard.push(`${channel.toString()} ${message.toString()}`));
    await listener.subscribe('rxb:reply:a', 'rxb:reply:b');
    const frames = [
      { replyTo: 'rxb:reply:a', frame: new Uint8Array(Buffer.from('first')) },
      { replyTo: 'rxb:reply:b', frame: Buffer.from('second') },
      { replyTo: 'rxb:reply:a', frame: Buffer.from('third') },
    ];
    await finishByScript(connection, key, 'workers', frames, [], ids);
    expect(await pending(key)).toBe(0);
    expect(await admin.xlen(key)).toBe(0);
    await listener.ping(); // published before the script returned: heard before this answer
    expect(heard).toEqual(['rxb:reply:a first', 'rxb:reply:b second', 'rxb:reply:a third']);
  });

  it('a reply the broker refuses (ACL) fails the call and acknowledges nothing', async () => {
    const key = freshKey();
    const ids = await delivered(key, 3);
    await admin.call('ACL', 'SETUSER', 'finisher', 'on', '>pw', 'resetkeys', 'resetchannels', '~rxb:*', '&rxb:reply:allowed',
      '-@all', '+ping', '+info', '+xack', '+xdel', '+publish', '+eval', '+evalsha');
    try {
      const connection = connect({ username: 'finisher', password: 'pw' });
      expect(await mayFinishByScript(connection, key)).toBe(true);
      const frames = [{ replyTo: 'rxb:reply:allowed', frame: Buffer.from('x') }, { replyTo: 'rxb:reply:other', frame: Buffer.from('y') }];
      await expect(finishByScript(connection, key, 'workers', frames, [], ids)).rejects.toThrow(/can't publish to the channel|NOPERM|permissions/i);
      expect(await pending(key)).toBe(3);
      expect(await admin.xlen(key)).toBe(3);
    } finally {
      await admin.call('ACL', 'DELUSER', 'finisher');
    }
  });

  it.each([
    ['without +eval', '~rxb:*', '+evalsha'],
    ['without +evalsha', '~rxb:*', '+eval'],
    ['who may read the stream but not write it (%R~)', '%R~rxb:*', '+eval +evalsha'],
  ])('a user %s may not run it: told once, at the check, which acknowledges nothing', async (_, keys, scripting) => {
    const key = freshKey();
    await delivered(key, 2);
    const username = `nofinish-${streams}`;
    await admin.call('ACL', 'SETUSER', username, 'on', '>pw', 'resetkeys', keys, '-@all', '+ping', '+info', '+xack', '+xdel', ...scripting.split(' '));
    try {
      await expect(mayFinishByScript(connect({ username, password: 'pw' }), key)).resolves.toBe(false);
      expect(await pending(key)).toBe(2);
    } finally {
      await admin.call('ACL', 'DELUSER', username);
    }
  });
});

describe('Redis finish script: requests moved out of entries', () => {
  const message = (id: string, extra: Partial<RequestMessage> = {}): RequestMessage => ({ id, replyTo: 'rxb:reply:ab', body: Buffer.from(`body of ${id}`), ...extra });
  /** A stream with one entry per packet, read by one consumer of the group 'workers': their ids. */
  const deliveredPackets = async (key: string, packets: Uint8Array[]): Promise<string[]> => {
    await admin.xgroup('CREATE', key, 'workers', '0', 'MKSTREAM');
    for (const packet of packets) await admin.xadd(key, '*', 'q', Buffer.from(packet));
    const read = (await admin.xreadgroup('GROUP', 'workers', 'w1', 'COUNT', packets.length, 'STREAMS', key, '>')) as [string, [string, string[]][]][];
    return read[0][1].map(([id]) => id);
  };
  const entries = async (key: string): Promise<[string, Buffer[]][]> => (await admin.xrangeBuffer(key, '-', '+')).map(([id, fields]) => [id.toString(), fields]);

  it('appends each packet as a new entry, with every request and its earlier deliveries, then acknowledges the old ones', async () => {
    const key = freshKey();
    const [old] = await deliveredPackets(key, [encodeRequestPacket([message('a'), message('b'), message('c')])]);
    const connection = connect();
    expect(await mayFinishByScript(connection, key)).toBe(true);
    const moved = [message('b', { deadline: 1_900_000_000_000 }), message('c', { priority: 2 })];
    await finishByScript(connection, key, 'workers', [], [encodeRequestPacket(moved, (i) => i + 1)], [old]);
    const left = await entries(key);
    expect(left).toHaveLength(1);
    expect(left[0][0]).not.toBe(old);
    expect(entryRequests(left[0][1]).map((r) => [r.id, r.earlier, r.deadline, r.priority, r.body.toString()])).toEqual([
      ['b', 1, 1_900_000_000_000, undefined, 'body of b'],
      ['c', 2, undefined, 2, 'body of c'],
    ]);
    expect(Number(((await admin.xpending(key, 'workers')) as [number])[0])).toBe(0);
  });

  it('a user who may not append (no +xadd) acknowledges nothing: the requests moved out stay in their entry', async () => {
    const key = freshKey();
    const ids = await deliveredPackets(key, [encodeRequestPacket([message('a'), message('b')])]);
    await admin.call('ACL', 'SETUSER', 'noappend', 'on', '>pw', 'resetkeys', 'resetchannels', '~rxb:*', '-@all', '+ping', '+info', '+xack', '+xdel', '+eval', '+evalsha');
    try {
      const connection = connect({ username: 'noappend', password: 'pw' });
      expect(await mayFinishByScript(connection, key)).toBe(true);
      await expect(finishByScript(connection, key, 'workers', [], [encodeRequestPacket([message('b')], () => 1)], ids)).rejects.toThrow(/NOPERM|permissions|can't run/i);
      expect((await entries(key)).map(([id]) => id)).toEqual(ids);
      expect(Number(((await admin.xpending(key, 'workers')) as [number])[0])).toBe(1);
    } finally {
      await admin.call('ACL', 'DELUSER', 'noappend');
    }
  });

  it('after a broker restart the first call on the new connection brings the script along: no call meets NOSCRIPT', async () => {
    const key = freshKey();
    const connection = connect();
    expect(await mayFinishByScript(connection, key)).toBe(true);
    await broker.restart(); // the script cache is empty, INFO counts from zero
    const ids = await deliveredPackets(key, [encodeRequestPacket([message('after')])]);
    await finishByScript(connection, key, 'workers', [], [], ids);
    const stats = await info();
    expect(errors(stats, 'NOSCRIPT')).toBe(0);
    expect(calls(stats, 'eval')).toBe(1);
    expect(await admin.xlen(key)).toBe(0);
  });
});

describe('Redis stream entries as a worker reads them', () => {
  const fields = (...pairs: (string | Buffer)[]): Buffer[] => pairs.map((p) => Buffer.from(p));

  it('reads a packet entry as its requests, an entry of the earlier format (one request per entry) as one request', () => {
    const packet = Buffer.from(encodeRequestPacket([{ id: 'p-1', replyTo: 'rxb:reply:a', body: Buffer.from('x') }, { id: 'p-2', replyTo: 'rxb:reply:a', body: Buffer.from('y') }]));
    expect(entryRequests(fields('q', packet)).map((r) => [r.id, r.replyTo, r.body.toString(), r.earlier])).toEqual([['p-1', 'rxb:reply:a', 'x', 0], ['p-2', 'rxb:reply:a', 'y', 0]]);
    const [old] = entryRequests(fields('i', 'o-1', 'r', 'rxb:reply:b', 'd', '1900000000000', 'c', 'ctx', 'p', '3', 'm', 'mac', 'b', 'body'));
    expect({ ...old, body: old.body.toString(), context: old.context?.toString(), mac: old.mac?.toString() }).toEqual({
      id: 'o-1', replyTo: 'rxb:reply:b', deadline: 1_900_000_000_000, context: 'ctx', priority: 3, mac: 'mac', body: 'body', earlier: 0,
    });
  });

  it('reads a packet that does not decode, or fields of no known kind, as one request with no id nor reply address', () => {
    const [garbage] = entryRequests(fields('q', Buffer.from('rq\u0001garbage')));
    expect([garbage.id, garbage.replyTo, garbage.body.toString()]).toEqual(['', '', 'rq\u0001garbage']);
    expect(entryRequests(fields('x', 'y')).map((r) => [r.id, r.replyTo, r.body.length])).toEqual([['', '', 0]]);
  });
});

describe('Redis hand-back of entries a consumer still owns', () => {
  it.each([
    ['by script (atomic)', async (c: Redis, key: string, ids: string[]) => {
      expect(await mayHandBackByScript(c, key)).toBe(true);
      return handBackByScript(c, key, 'workers', 'w1', 60_000, ids);
    }],
    ['checked, then claimed (a user without scripts)', (c: Redis, key: string, ids: string[]) => handBackChecked(c, key, 'workers', 'w1', 60_000, ids)],
  ])('%s: hands back its own entries (idle for long, no delivery counted) and leaves one another consumer took over', async (_, handBack) => {
    const key = freshKey();
    await admin.xgroup('CREATE', key, 'workers', '0', 'MKSTREAM');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await admin.xadd(key, '*', 'i', `r${i}`)) as string);
    await admin.xreadgroup('GROUP', 'workers', 'w1', 'COUNT', 3, 'STREAMS', key, '>');
    await admin.xclaim(key, 'workers', 'w2', 0, ids[1]); // taken over by w2 (its second delivery)
    const connection = connect();
    expect(await handBack(connection, key, ids)).toBe(2);
    const rows = (await admin.xpending(key, 'workers', '-', '+', 10)) as [string, string, number, number][];
    expect(rows.map(([id, owner, , deliveries]) => [id, owner, Number(deliveries)])).toEqual([[ids[0], 'w1', 1], [ids[1], 'w2', 2], [ids[2], 'w1', 1]]);
    expect(rows.map(([, , idle]) => Number(idle) >= 60_000)).toEqual([true, false, true]);
    expect(await handBack(connection, key, [])).toBe(0);
  });
});
