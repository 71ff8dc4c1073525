import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { redisTransport } from '../../lib/redis';
import { remoteBatcher, serveBatches, v8Codec, type ServeBatchesOptions } from '../../lib/remote';
import { encodeRequestPacket } from '../../lib/remote/requestPacket';
import { decodeReplies } from '../../lib/remote/wire';
import { startRedis, waitFor, type TestBroker } from './brokers';
import { startChildWorker } from './childWorkers';
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
    '+xack', '+xdel', '+xadd', '+xrange', '+publish'];
  /**
   * A producer and a worker as users `<name>producer` and `<name>worker` (made with `rights`):
   * one request, then a tick of eight. Returns the batches the worker ran and how many EVALSHA
   * and XADD the broker ran for the tick (sending it, and finishing its batch).
   */
  const tickAs = async (name: string, rights: { producer?: Rights; worker?: Rights }) => {
    const subject = `${name}-${process.pid}`;
    const admin = new Redis(broker.url);
    const user = async (username: string, extra: string[]): Promise<RedisOptions> => {
      await admin.call('ACL', 'SETUSER', username, 'on', `>${username}-password`, 'resetkeys', 'resetchannels', '&rxb:reply:*',
        '-@all', '+ping', '+info', '+client|setname', '+multi', '+exec', ...extra);
      return { username, password: `${username}-password` };
    };
    const producerUser = await user(`${name}producer`, ['+xadd', '+subscribe', ...(rights.producer ?? ((key: string) => [`%W~${key}`]))(`rxb:${subject}`)]);
    const workerUser = await user(`${name}worker`, (rights.worker ?? workerRights)(`rxb:${subject}`));
    const errors: string[] = [];
    const batches: number[][] = [];
    const worker = await serveBatches<number, number>(redisTransport({ url: broker.url, pollMs: 50, redis: workerUser }), subject,
      (xs) => (batches.push([...xs]), xs.map((x) => 2 * x)), { maxBatchSize: 16, claimIdleMs: 300, onError: (e) => errors.push(e.message) });
    const producer = remoteBatcher<number, number>(redisTransport({ url: broker.url, redis: producerUser }), subject, { timeoutMs: 10_000 });
    try {
      await expect(producer.run(0)).resolves.toBe(0); // the links are open (and the rights checked)
      const before = await Promise.all([callsOf(admin, 'evalsha'), callsOf(admin, 'xadd')]);
      const tick = Array.from({ length: 8 }, (_, i) => i + 1);
      await expect(Promise.all(tick.map((x) => producer.run(x)))).resolves.toEqual(tick.map((x) => 2 * x));
      const evalsha = (await callsOf(admin, 'evalsha')) - before[0];
      const xadd = (await callsOf(admin, 'xadd')) - before[1];
      await waitFor(async () => JSON.stringify(await redisTransport({ url: broker.url }).backlog(subject)) === '{"waiting":0,"pending":0}', 'the worker to acknowledge');
      expect(errors).toEqual([]);
      expect(producer.stats().duplicatesDropped).toBe(0);
      return { batches, evalsha, xadd, subject };
    } finally {
      await producer.stop();
      await worker.stop();
      await admin.call('ACL', 'DELUSER', producerUser.username!, workerUser.username!);
      admin.disconnect();
    }
  };

  it('a producer user needs only +xadd on its stream (write only, %W~) and +subscribe: a tick goes out in one XADD and reaches the worker in order, in one batch', async () => {
    const { batches, evalsha, xadd } = await tickAs('plain', {});
    expect([evalsha, xadd]).toEqual([0, 1]);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5, 6, 7, 8]]);
  });

  it('a worker user that may run scripts replies to and acknowledges a batch in one EVALSHA', async () => {
    const { batches, evalsha, xadd } = await tickAs('finish', { worker: (key) => [...workerRights(key), '+eval', '+evalsha'] });
    expect([evalsha, xadd]).toEqual([1, 1]);
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

describe('Redis Streams: one entry per producer tick', () => {
  const admin = (): Redis => {
    const connection = new Redis(broker.url);
    opened.push(connection);
    return connection;
  };
  const opened: Redis[] = [];
  const stoppers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop();
    for (const c of opened.splice(0)) c.disconnect();
  });
  let subjects = 0;
  const freshSubject = (): string => `packed-${process.pid}-${++subjects}`;
  const produce = (subject: string, options: Parameters<typeof remoteBatcher>[2] = {}) => {
    const p = remoteBatcher<number, number>(redisTransport({ url: broker.url, pollMs: 100 }), subject, { timeoutMs: 30_000, ...options });
    stoppers.push(() => p.stop());
    return p;
  };
  const serve = async (subject: string, run: (xs: readonly number[]) => number[], options: Partial<ServeBatchesOptions<number>> = {}) => {
    const w = await serveBatches<number, number>(redisTransport({ url: broker.url, pollMs: 100 }), subject, run, { maxBatchSize: 16, claimIdleMs: 1000, onError: () => undefined, ...options });
    stoppers.push(() => w.stop());
    return w;
  };
  const child = async (subject: string, env: Record<string, string>) => {
    const c = await startChildWorker('redis', broker.url, subject, env);
    stoppers.push(() => c.kill());
    return c;
  };
  const drained = (subject: string): Promise<void> =>
    waitFor(async () => JSON.stringify(await redisTransport({ url: broker.url }).backlog(subject)) === '{"waiting":0,"pending":0}', 'the stream to be empty with nothing pending');
  const key = (subject: string): string => `rxb:${subject}`;
  const inputs = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

  it('a tick of 64 requests is one stream entry, counted as 64 requests by backlog(), and a worker serves all 64 in one batch', async () => {
    const subject = freshSubject();
    const setup = await redisTransport({ url: broker.url }).openWorker(subject, { claimIdleMs: 1000, maxDeliveries: 5 });
    await setup.close(); // the group exists; nobody reads yet
    const p = produce(subject);
    const calls = inputs(64).map((x) => p.run(x));
    const a = admin();
    await waitFor(async () => (await a.xlen(key(subject))) > 0, 'the tick to be in the stream');
    expect(await a.xlen(key(subject))).toBe(1);
    expect(await redisTransport({ url: broker.url }).backlog(subject)).toEqual({ waiting: 64, pending: 0 });
    const batches: number[][] = [];
    await serve(subject, (xs) => (batches.push([...xs]), xs.map((x) => 2 * x)), { maxBatchSize: 64 });
    await expect(Promise.all(calls)).resolves.toEqual(inputs(64).map((x) => 2 * x));
    expect(batches).toEqual([inputs(64)]);
    await drained(subject);
  });

  it('a worker killed holding part of an entry (some answered, some running, some held): every caller is answered once, correctly; none is lost', async () => {
    const subject = freshSubject();
    const doomed = await child(subject, { RXB_MODE: 'hang-after-first', RXB_MAX_BATCH: '16', RXB_CLAIM_IDLE_MS: '1000' });
    const p = produce(subject);
    const settled: number[] = [];
    const calls = inputs(64).map((x) => p.run(x).then((y) => (settled.push(x), y)));
    await waitFor(() => doomed.batches.length >= 2 && settled.length === 16, 'the doomed worker to answer one batch and start another');
    expect(doomed.batches[0]).toEqual(inputs(16)); // one entry, handed out 16 at a time
    await doomed.kill();
    const rerun: number[] = [];
    const survivor = await serve(subject, (xs) => (rerun.push(...xs), xs.map((x) => 2 * x + 1)), { maxBatchSize: 64 });
    await expect(Promise.all(calls)).resolves.toEqual(inputs(64).map((x) => 2 * x + 1));
    // The whole entry went to the survivor again: the 16 answered before are answered again, and dropped by id.
    await waitFor(() => p.stats().duplicatesDropped === 16, 'the answers of the re-run first batch to be dropped');
    expect(rerun.sort((a, b) => a - b)).toEqual(inputs(64));
    expect(p.stats()).toMatchObject({ succeeded: 64, failed: 0, timedOut: 0 });
    expect(survivor.stats().redeliveries).toBe(64);
    await drained(subject);
  }, 30_000);

  it('a redelivered entry bigger than its redelivery cap is split into entries of the cap, appended again uncharged: no batch runs more than the cap, each request is charged once', async () => {
    const subject = freshSubject();
    const doomed = await child(subject, { RXB_MODE: 'hang', RXB_MAX_BATCH: '64', RXB_CLAIM_IDLE_MS: '1000' });
    const p = produce(subject);
    const calls = inputs(64).map((x) => p.run(x));
    await waitFor(() => doomed.batches.length === 1, 'the doomed worker to start its batch');
    expect(doomed.batches[0]).toEqual(inputs(64));
    await doomed.kill();
    const batches: number[][] = [];
    // maxDeliveries 3: a second delivery may run in a batch of 32 at most.
    const survivor = await serve(subject, (xs) => (batches.push([...xs]), xs.map((x) => 2 * x + 1)), { maxBatchSize: 64, maxDeliveries: 3 });
    await expect(Promise.all(calls)).resolves.toEqual(inputs(64).map((x) => 2 * x + 1));
    expect(batches.every((b) => b.length <= 32)).toBe(true);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(inputs(64));
    // Taken over from the dead worker and split in the same step: read again as two new entries, on their second delivery (not charged a third).
    expect(survivor.stats()).toMatchObject({ redeliveries: 64, exhausted: 0 });
    expect(await admin().xlen(key(subject))).toBe(0);
    expect(p.stats()).toMatchObject({ succeeded: 64, duplicatesDropped: 0 });
    await drained(subject);
  }, 30_000);

  it('a link that lost its entry to another worker\'s reclaim releases and renews it in vain: the new holder keeps it, its delivery count unchanged, and no third link gets it early', async () => {
    const subject = freshSubject();
    const transport = redisTransport({ url: broker.url, pollMs: 50 });
    const link = async () => {
      const l = await transport.openWorker(subject, { claimIdleMs: 60_000, maxDeliveries: 5 });
      stoppers.push(() => l.close());
      return l;
    };
    const first = await link();
    const producer = await transport.openProducer(subject, () => undefined);
    stoppers.push(() => producer.close());
    await producer.send([0, 1].map((x) => ({ id: `r${x}`, replyTo: producer.replyTo, body: v8Codec.encode(x) })));
    const mine = await first.pull(10, false);
    expect(mine.map((d) => [d.id, d.deliveries])).toEqual([['r0', 1], ['r1', 1]]);
    // The first link stalls past its claim (made to look idle for long, rather than waited out).
    const a = admin();
    const pendingRows = async () => (await a.xpending(key(subject), 'workers', '-', '+', 10)) as [string, string, number, number][];
    const [[id, owner]] = await pendingRows();
    await a.xclaim(key(subject), 'workers', owner, 0, id, 'IDLE', 120_000, 'JUSTID');
    const second = await link();
    const taken = await second.pull(10, false);
    expect(taken.map((d) => [d.id, d.deliveries, d.reclaimed])).toEqual([['r0', 2, true], ['r1', 2, true]]);
    const [[, holder]] = await pendingRows();
    expect(holder).not.toBe(owner);
    // The late holder gives up and hands the entry back whole: not its own any more, so nothing happens.
    await first.release(mine);
    const [[sameId, stillHolder, idle, deliveries]] = await pendingRows();
    expect([sameId, stillHolder, Number(deliveries)]).toEqual([id, holder, 2]);
    expect(Number(idle)).toBeLessThan(60_000); // not made to look idle: no reclaim takes it
    // Nor does its renewal take the entry back from the worker running it.
    await first.touch(mine);
    const [[, holderAfterTouch, , deliveriesAfterTouch]] = await pendingRows();
    expect([holderAfterTouch, Number(deliveriesAfterTouch)]).toEqual([holder, 2]);
    const third = await link();
    expect(await third.pull(10, false)).toEqual([]);
    await second.ack(taken);
    await expect(transport.backlog(subject)).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('serves an entry of the earlier format (one request per entry, as producers before packets wrote it): a rolling upgrade', async () => {
    const subject = freshSubject();
    await serve(subject, (xs) => xs.map((x) => 2 * x));
    const frames: Uint8Array[] = [];
    const link = await redisTransport({ url: broker.url }).openProducer(subject, (frame) => frames.push(frame));
    stoppers.push(() => link.close());
    await admin().xadd(key(subject), '*', 'i', 'old-1', 'r', link.replyTo, 'p', '2', 'b', Buffer.from(v8Codec.encode(21)));
    await waitFor(() => frames.length === 1, 'the old entry to be answered');
    const [[id, status, body]] = decodeReplies(frames[0])!;
    expect([id, status, v8Codec.decode(body as Uint8Array)]).toEqual(['old-1', 'ok', 42]);
    await drained(subject);
  });

  it.each([['without auth', false], ['with auth (counted as forged)', true]])('a garbage entry is dropped and acknowledged, never run nor stuck (%s)', async (_, signed) => {
    const subject = freshSubject();
    const auth = signed ? { auth: { keys: [randomBytes(32)] } } : {};
    const ran: number[] = [];
    const w = await serve(subject, (xs) => (ran.push(...xs), xs.map((x) => 2 * x)), auth);
    const a = admin();
    await a.xadd(key(subject), '*', 'q', Buffer.from('rq\u0001 not a packet'));
    await a.xadd(key(subject), '*', 'q', Buffer.from(encodeRequestPacket([{ id: 'x', replyTo: 'rxb:reply:x', body: Buffer.from('y') }])).subarray(0, 12));
    await drained(subject);
    const p = produce(subject, auth);
    await expect(p.run(5)).resolves.toBe(10);
    expect(ran).toEqual([5]);
    if (signed) expect(w.stats().forged).toBe(2);
    await drained(subject);
  });
});
