import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
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
