import { Redis } from 'ioredis';
import { appendByScript, mayAppendByScript } from '../../lib/redis/appendScript';
import { entryFields } from '../../lib/redis/entryFields';
import { finishByScript, mayFinishByScript } from '../../lib/redis/finishScript';
import type { RequestMessage } from '../../lib/remote/transport';
import { startRedis, type TestBroker } from './brokers';

// The producer's append script (one EVALSHA per tick) and the worker's finish script (reply and
// acknowledge in one EVALSHA), against a private redis-server started from the binary for this file. A missing binary fails these tests; it never skips them.
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
/** An entry as XRANGE gives it (strings: every test value is UTF-8). */
const asEntry = (m: RequestMessage): string[] => entryFields(m).map(String);
/** What INFO says about the broker since it started: `calls` of a command, or how often an error prefix was answered. */
const info = async (): Promise<string> => admin.info('all');
const calls = (text: string, command: string): number => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
const errors = (text: string, prefix: string): number => Number(new RegExp(`^errorstat_${prefix}:count=(\\d+)`, 'm').exec(text)?.[1] ?? 0);

describe('Redis append script', () => {
  it('appends a tick of requests in order, each with its own fields, and resolves with their entry ids in that order', async () => {
    const key = freshKey();
    const connection = connect();
    expect(await mayAppendByScript(connection, key)).toBe(true);
    expect(await admin.exists(key)).toBe(0); // the check appends nothing
    const messages = [
      message('p1-1'),
      message('p1-2', { deadline: 1_900_000_000_000, priority: 3 }),
      message('p1-3', { context: Buffer.from('ctx'), mac: Buffer.from('mac-bytes') }),
      message('p1-4', { body: Buffer.alloc(0) }),
    ];
    const ids = await appendByScript(connection, key, messages);
    const entries = await admin.xrange(key, '-', '+');
    expect(entries).toEqual(messages.map((m, i) => [ids[i], asEntry(m)]));
  });

  it('a script cache emptied under a live connection (SCRIPT FLUSH): calls under way load it again and keep their order', async () => {
    const key = freshKey();
    const connection = connect();
    expect(await mayAppendByScript(connection, key)).toBe(true);
    await admin.script('FLUSH');
    const before = errors(await info(), 'NOSCRIPT');
    const first = appendByScript(connection, key, [message('a-1'), message('a-2')]);
    const second = appendByScript(connection, key, [message('b-1'), message('b-2')]);
    const ids = [...(await first), ...(await second)];
    expect(errors(await info(), 'NOSCRIPT')).toBeGreaterThan(before); // it did meet an empty cache
    expect((await admin.xrange(key, '-', '+')).map(([id, fields]) => [id, fields[1]])).toEqual(
      [['a-1', 0], ['a-2', 1], ['b-1', 2], ['b-2', 3]].map(([name, i]) => [ids[i as number], name]),
    );
  });

  it('after a broker restart the first call on the new connection brings the script along: no call meets NOSCRIPT', async () => {
    const key = freshKey();
    const connection = connect();
    expect(await mayAppendByScript(connection, key)).toBe(true);
    await appendByScript(connection, key, [message('before-1'), message('before-2')]);
    await broker.restart(); // the script cache is empty, INFO counts from zero
    const ids = await appendByScript(connection, key, [message('after-1'), message('after-2')]);
    const stats = await info();
    expect(errors(stats, 'NOSCRIPT')).toBe(0);
    expect(calls(stats, 'eval')).toBe(1);
    expect((await admin.xrange(key, '-', '+')).map(([id, fields]) => [id, fields[1]]).slice(2)).toEqual([[ids[0], 'after-1'], [ids[1], 'after-2']]);
  });

  it.each([
    ['without +eval', '~rxb:*', '+evalsha'],
    ['without +evalsha', '~rxb:*', '+eval'],
    ['who may write the stream but not read it (%W~)', '%W~rxb:*', '+eval +evalsha'],
  ])('a user %s may not run it: told once, at the check, which appends nothing', async (_, keys, scripting) => {
    const key = freshKey();
    const username = `noscripts-${streams}`;
    await admin.call('ACL', 'SETUSER', username, 'on', '>pw', 'resetkeys', keys, '-@all', '+ping', '+info', '+xadd', ...scripting.split(' '));
    try {
      const connection = connect({ username, password: 'pw' });
      await expect(mayAppendByScript(connection, key)).resolves.toBe(false);
      await expect(connection.xadd(key, '*', 'i', 'plain')).resolves.toMatch(/^\d+-\d+$/); // the user itself works
      expect(await admin.xlen(key)).toBe(1);
    } finally {
      await admin.call('ACL', 'DELUSER', username);
    }
  });

  it('a user with +eval +evalsha and the stream readable (~) may run it', async () => {
    const key = freshKey();
    await admin.call('ACL', 'SETUSER', 'scripts', 'on', '>pw', 'resetkeys', '~rxb:*', '-@all', '+ping', '+info', '+xadd', '+eval', '+evalsha');
    try {
      const connection = connect({ username: 'scripts', password: 'pw' });
      await expect(mayAppendByScript(connection, key)).resolves.toBe(true);
      expect(await appendByScript(connection, key, [message('s-1'), message('s-2')])).toHaveLength(2);
      // Scripts run with the user's rights: no command it lacks, and no key outside its pattern.
      await expect(connection.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, key)).rejects.toThrow(/can't run this command/);
      await expect(appendByScript(connection, 'other:stream', [message('s-3'), message('s-4')])).rejects.toThrow(/NOPERM/);
    } finally {
      await admin.call('ACL', 'DELUSER', 'scripts');
    }
  });
});

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
    await finishByScript(connection, key, 'workers', frames, ids);
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
      await expect(finishByScript(connection, key, 'workers', frames, ids)).rejects.toThrow(/can't publish to the channel|NOPERM|permissions/i);
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
