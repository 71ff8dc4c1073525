import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, serveBatches } from '../../lib/remote';
import { startRedis, waitFor, type TestBroker } from './brokers';
import { describeTransportContract } from './contract';

// Redis Streams, against a private redis-server started from the binary for this file
// (never the machine's own instance). A missing binary fails these tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startRedis();
});
afterAll(async () => {
  await broker?.stop();
});

describeTransportContract('Redis Streams', () => ({
  transport: () => redisTransport({ url: broker.url, pollMs: 200 }),
  broker: { kind: 'redis', instance: () => broker },
}), { processes: true });

describe('Redis Streams specifics', () => {
  it('a worker recreates its consumer group when the stream vanished (e.g. a restart without persistence)', async () => {
    const subject = `vanishing-${process.pid}`;
    const errors: string[] = [];
    const worker = await serveBatches<number, number>(redisTransport({ url: broker.url, pollMs: 50 }), subject, (xs) => xs.map((x) => x + 1), {
      maxBatchSize: 16, claimIdleMs: 300, onError: (e) => errors.push(e.message),
    });
    const producer = remoteBatcher<number, number>(redisTransport({ url: broker.url }), subject, { timeoutMs: 10_000 });
    const admin = new Redis(broker.url);
    try {
      await expect(producer.run(1)).resolves.toBe(2);
      await admin.del(`rxb:${subject}`); // stream and consumer group gone
      await expect(producer.run(2)).resolves.toBe(3);
      expect(await admin.xinfo('GROUPS', `rxb:${subject}`)).toHaveLength(1);
    } finally {
      admin.disconnect();
      await producer.stop();
      await worker.stop();
    }
  });

  it('ACL users as in the recipe: producers and workers work, a producer cannot read the stream or publish replies, a worker cannot listen to replies', async () => {
    const subject = 'double';
    const admin = new Redis(broker.url);
    // The two users of the scale-out recipe's Security section, as printed there.
    const recipe = readFileSync(join(__dirname, '..', '..', 'docs', 'recipes', 'scale-out-redis.md'), 'utf8');
    const commands = [...recipe.replace(/ \\\n\s*/g, ' ').matchAll(/^ACL (SETUSER .+)$/gm)].map((m) => m[1].split(' '));
    expect(commands.map((c) => c[1])).toEqual(['producer', 'worker']);
    for (const command of commands) await admin.call('ACL', ...command);
    const as = (username: string) => redisTransport({ url: broker.url, pollMs: 50, redis: { username, password: `${username}-password` } });
    const auth = { keys: [randomBytes(32)] };
    const errors: string[] = [];
    const worker = await serveBatches<number, number>(as('worker'), subject, (xs) => xs.map((x) => 2 * x), {
      maxBatchSize: 16, claimIdleMs: 300, auth, onError: (e) => errors.push(e.message),
    });
    const producer = remoteBatcher<number, number>(as('producer'), subject, { auth, timeoutMs: 10_000 });
    const snoop = new Redis(broker.url, { username: 'producer', password: 'producer-password' });
    const listener = new Redis(broker.url, { username: 'worker', password: 'worker-password' });
    try {
      await expect(Promise.all([producer.run(21), producer.run(4, { priority: 2, context: 'c' })])).resolves.toEqual([42, 8]);
      await expect(snoop.xrange(`rxb:${subject}`, '-', '+')).rejects.toThrow(/NOPERM/);
      await expect(snoop.publish('rxb:reply:someone', 'x')).rejects.toThrow(/NOPERM/);
      await expect(snoop.xadd('rxb:other-model', '*', 'b', 'x')).rejects.toThrow(/NOPERM/);
      await expect(listener.subscribe('rxb:reply:someone')).rejects.toThrow(/NOPERM/);
      const backlog = async (): Promise<unknown> => as('worker').backlog(subject);
      await waitFor(async () => JSON.stringify(await backlog()) === '{"waiting":0,"pending":0}', 'the worker to acknowledge');
      expect(errors).toEqual([]);
    } finally {
      snoop.disconnect();
      listener.disconnect();
      await producer.stop();
      await worker.stop();
      admin.disconnect();
    }
  });

  /** How often the broker ran `command` since it started (INFO commandstats). */
  const callsOf = async (admin: Redis, command: string): Promise<number> =>
    Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await admin.info('commandstats'))?.[1] ?? 0);
  /** Rights of a stream's key, given the key. */
  type Rights = (key: string) => string[];
  /** The recipe's worker, without script rights, on any stream. */
  const workerRights: Rights = (key) => [`~${key}`, '+xgroup|create', '+xgroup|delconsumer', '+xreadgroup', '+xautoclaim', '+xclaim', '+xpending',
    '+xack', '+xdel', '+xlen', '+publish'];
  /**
   * A producer and a worker as users `<name>producer` and `<name>worker` (made with `rights`):
   * one request, then a tick of eight. Returns the batches the worker ran and how many EVALSHA
   * the broker ran for the tick (sending it, and finishing its batch).
   */
  const tickAs = async (name: string, rights: { producer: Rights; worker?: Rights }) => {
    const subject = `${name}-${process.pid}`;
    const admin = new Redis(broker.url);
    const user = async (username: string, extra: string[]): Promise<RedisOptions> => {
      await admin.call('ACL', 'SETUSER', username, 'on', `>${username}-password`, 'resetkeys', 'resetchannels', '&rxb:reply:*',
        '-@all', '+ping', '+info', '+client|setname', '+multi', '+exec', ...extra);
      return { username, password: `${username}-password` };
    };
    const producerUser = await user(`${name}producer`, ['+xadd', '+subscribe', ...rights.producer(`rxb:${subject}`)]);
    const workerUser = await user(`${name}worker`, (rights.worker ?? workerRights)(`rxb:${subject}`));
    const errors: string[] = [];
    const batches: number[][] = [];
    const worker = await serveBatches<number, number>(redisTransport({ url: broker.url, pollMs: 50, redis: workerUser }), subject,
      (xs) => (batches.push([...xs]), xs.map((x) => 2 * x)), { maxBatchSize: 16, claimIdleMs: 300, onError: (e) => errors.push(e.message) });
    const producer = remoteBatcher<number, number>(redisTransport({ url: broker.url, redis: producerUser }), subject, { timeoutMs: 10_000 });
    try {
      await expect(producer.run(0)).resolves.toBe(0); // the links are open (and the rights checked)
      const before = await callsOf(admin, 'evalsha');
      const tick = Array.from({ length: 8 }, (_, i) => i + 1);
      await expect(Promise.all(tick.map((x) => producer.run(x)))).resolves.toEqual(tick.map((x) => 2 * x));
      const evalsha = (await callsOf(admin, 'evalsha')) - before;
      await waitFor(async () => JSON.stringify(await redisTransport({ url: broker.url }).backlog(subject)) === '{"waiting":0,"pending":0}', 'the worker to acknowledge');
      expect(errors).toEqual([]);
      expect(producer.stats().duplicatesDropped).toBe(0);
      return { batches, evalsha, subject };
    } finally {
      await producer.stop();
      await worker.stop();
      await admin.call('ACL', 'DELUSER', producerUser.username!, workerUser.username!);
      admin.disconnect();
    }
  };

  it('a producer user that may run scripts (+eval +evalsha, ~ on its stream): a tick goes out in one EVALSHA and reaches the worker in order, in one batch; scripts cannot read the stream either', async () => {
    const { batches, evalsha, subject } = await tickAs('script', { producer: (key) => [`~${key}`, '+eval', '+evalsha'] });
    expect(evalsha).toBe(1);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5, 6, 7, 8]]);
    // The same rights, as an attacker holding the producer's password would use them.
    const admin = new Redis(broker.url);
    await admin.call('ACL', 'SETUSER', 'scriptsnoop', 'on', '>pw', 'resetkeys', `~rxb:${subject}`, '-@all', '+ping', '+info', '+xadd', '+eval', '+evalsha');
    const snoop = new Redis(broker.url, { username: 'scriptsnoop', password: 'pw' });
    try {
      await expect(snoop.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, `rxb:${subject}`)).rejects.toThrow(/can't run this command/);
      await expect(snoop.eval("return redis.call('XADD', KEYS[1], '*', 'b', 'x')", 1, 'rxb:other-model')).rejects.toThrow(/NOPERM/);
    } finally {
      snoop.disconnect();
      await admin.call('ACL', 'DELUSER', 'scriptsnoop');
      admin.disconnect();
    }
  });

  it.each([
    ['without +eval +evalsha', ((key) => [`~${key}`]) as Rights],
    ['with them but only write access to the stream (%W~)', ((key) => [`%W~${key}`, '+eval', '+evalsha']) as Rights],
  ])('a producer user that may not run scripts (%s) is found out once and keeps MULTI/EXEC: the tick reaches the worker in order, in one batch', async (_, producer) => {
    const { batches, evalsha } = await tickAs('noscript', { producer });
    expect(evalsha).toBe(0);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5, 6, 7, 8]]);
  });

  it('a worker user that may run scripts replies to and acknowledges a batch in one EVALSHA (its producer, without, uses MULTI/EXEC)', async () => {
    const { batches, evalsha } = await tickAs('finish', { producer: (key) => [`%W~${key}`], worker: (key) => [...workerRights(key), '+eval', '+evalsha'] });
    expect(evalsha).toBe(1);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5, 6, 7, 8]]);
  });

  it('users without MULTI/EXEC (ACLs written for earlier versions) still send, answer and acknowledge, each request once', async () => {
    const subject = `old-acl-${process.pid}`;
    const admin = new Redis(broker.url);
    await admin.call('ACL', 'SETUSER', 'oldproducer', 'on', '>oldproducer-password', 'resetkeys', 'resetchannels', `%W~rxb:${subject}`, '&rxb:reply:*',
      '-@all', '+ping', '+info', '+client|setname', '+xadd', '+subscribe');
    await admin.call('ACL', 'SETUSER', 'oldworker', 'on', '>oldworker-password', 'resetkeys', 'resetchannels', `~rxb:${subject}`, '&rxb:reply:*',
      '-@all', '+ping', '+info', '+client|setname', '+xgroup|create', '+xgroup|delconsumer', '+xreadgroup', '+xautoclaim',
      '+xclaim', '+xpending', '+xack', '+xdel', '+xlen', '+publish');
    const as = (username: string) => redisTransport({ url: broker.url, pollMs: 50, redis: { username, password: `${username}-password` } });
    const errors: string[] = [];
    const ran: number[] = [];
    const worker = await serveBatches<number, number>(as('oldworker'), subject,
      (xs) => (ran.push(...xs), xs.map((x) => 2 * x)), { maxBatchSize: 16, claimIdleMs: 300, onError: (e) => errors.push(e.message) });
    const producer = remoteBatcher<number, number>(as('oldproducer'), subject, { timeoutMs: 10_000 });
    try {
      await expect(producer.run(1)).resolves.toBe(2);
      await expect(Promise.all([2, 3, 4].map((x) => producer.run(x)))).resolves.toEqual([4, 6, 8]);
      await waitFor(async () => JSON.stringify(await redisTransport({ url: broker.url }).backlog(subject)) === '{"waiting":0,"pending":0}', 'the worker to acknowledge');
      expect(errors).toEqual([]);
      expect(ran.sort()).toEqual([1, 2, 3, 4]);
      expect(producer.stats().duplicatesDropped).toBe(0);
    } finally {
      await producer.stop();
      await worker.stop();
      admin.disconnect();
    }
  });
});
