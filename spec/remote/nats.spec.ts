import { randomBytes } from 'node:crypto';
import { connect, type MsgHdrs } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { natsTransport } from '../../lib/nats';
import { redeliveryCap } from '../../lib/core/redelivery';
import { DroppedMessageError, remoteBatcher, serveBatches, v8Codec, type Delivery, type WorkerLink } from '../../lib/remote';
import { encodeRequestPacket } from '../../lib/remote/requestPacket';
import { decodeReplies } from '../../lib/remote/wire';
import { requestHeaders } from '../../lib/nats/requestHeaders';
import { startNats, waitFor, type TestBroker } from './brokers';
import { describeTransportContract } from './contract';
import { startProxy } from './support/tcpProxy';

// NATS JetStream, against a private `nats-server -js` started from the binary for this file
// on a free loopback port (never the machine's own instance). A missing binary fails these
// tests; it never skips them.
let broker: TestBroker;
beforeAll(async () => {
  broker = await startNats();
});
afterAll(async () => {
  await broker?.stop();
});

describeTransportContract('NATS JetStream', () => ({
  // File storage, so the broker restart in the suite keeps the requests.
  transport: () => natsTransport({ servers: broker.url }),
  broker: { kind: 'nats', instance: () => broker },
}), { processes: true });

describe('NATS JetStream specifics', () => {
  it('with pubAck: false requests are published without waiting for JetStream, and still answered once', async () => {
    const subject = `no-puback-${process.pid}`;
    const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => xs.map((x) => x + 1), { maxBatchSize: 16, claimIdleMs: 300 });
    const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url, pubAck: false }), subject, { timeoutMs: 10_000 });
    try {
      await expect(Promise.all(Array.from({ length: 50 }, (_, i) => producer.run(i)))).resolves.toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(producer.stats()).toMatchObject({ succeeded: 50, duplicatesDropped: 0 });
    } finally {
      await producer.stop();
      await worker.stop();
    }
  });

  it('a waiting pull asks the server once: one waiting pull request for the first message, no probe before it', async () => {
    // A probe (no_wait) first would cost a round trip on an empty stream, and a request that
    // arrived during it would wait for the second one.
    const subject = `one-ask-${process.pid}`;
    const transport = natsTransport({ servers: broker.url });
    const link = await transport.openWorker(subject, { claimIdleMs: 5000, maxDeliveries: 5 });
    const spy = await connect({ servers: broker.url });
    const asks: { batch?: number; no_wait?: boolean; expires?: number }[] = [];
    const heard = spy.subscribe(`$JS.API.CONSUMER.MSG.NEXT.rxb_${subject}.workers`, { callback: (error, msg) => void (error ?? asks.push(msg.json())) });
    await spy.flush();
    const stop = new AbortController();
    try {
      const pulling = link.pull(8, true, stop.signal);
      const producer = await transport.openProducer(subject, () => undefined);
      await producer.send([{ id: 'a', replyTo: producer.replyTo, body: v8Codec.encode(1) }]);
      await expect(pulling).resolves.toHaveLength(1);
      await spy.flush();
      expect(asks[0]).toMatchObject({ batch: 1, expires: expect.any(Number) });
      expect(asks[0].no_wait).toBeUndefined();
      await producer.close();
    } finally {
      stop.abort();
      heard.unsubscribe();
      await spy.close();
      await link.close();
    }
  });

  it('a connection dropped midway through its handshake is dialled again within seconds, not after the client\'s 20 s connect timeout', async () => {
    // @nats-io/nats-core 3.4 notices a socket that closes after the server's INFO and before
    // the handshake's PONG only when its connect timeout ends (20 s by default); the transport
    // sets it to 5 s. Requests meanwhile wait in the client and go out once it is back.
    const subject = `handshake-${process.pid}`;
    const proxy = await startProxy({ port: Number(new URL(broker.url).port) });
    const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => xs.map((x) => x + 1), { maxBatchSize: 8 });
    const events: string[] = [];
    const producer = remoteBatcher<number, number>(natsTransport({ servers: proxy.url('nats') }), subject, {
      timeoutMs: 15_000, onBrokerEvent: (e) => void events.push(e.type),
    });
    try {
      await expect(producer.run(1)).resolves.toBe(2);
      proxy.cutNextAfterGreeting();
      proxy.cut();
      await waitFor(() => proxy.cutConnections >= 2, 'the redial to be cut midway through its handshake');
      await expect(producer.run(2)).resolves.toBe(3);
      await waitFor(() => events.includes('resubscribed'), 'the reply subscription to be reported back');
      // The client reports the attempt that failed midway as one more disconnect (and, once
      // back, one more reconnect): the kinds and their order are what is promised.
      expect([...new Set(events)]).toEqual(['disconnected', 'reconnected', 'resubscribed']);
    } finally {
      await producer.stop();
      await worker.stop();
      await proxy.close();
    }
  }, 30_000);

  it('links opened all at once on a new subject share its stream; a stream of another name holding the subject is an error', async () => {
    const subject = `opened-at-once-${process.pid}`;
    const transports = Array.from({ length: 6 }, () => natsTransport({ servers: broker.url }));
    const links = await Promise.all(transports.map((t, i) => (i % 2 === 0 ? t.openWorker(subject, { claimIdleMs: 1000, maxDeliveries: 3 }) : t.openProducer(subject, () => undefined))));
    await Promise.all(links.map((l) => l.close()));
    const admin = await connect({ servers: broker.url });
    try {
      const taken = `taken-${process.pid}`;
      await (await jetstreamManager(admin)).streams.add({ name: `squatter_${process.pid}`, subjects: [`rxb.${taken}`] });
      await expect(natsTransport({ servers: broker.url }).openWorker(taken, { claimIdleMs: 1000, maxDeliveries: 3 })).rejects.toThrow(/subjects overlap/);
    } finally {
      await admin.close();
    }
  });

  it('publishes waiting to be retried add no listener each, and a link closed meanwhile gives up at once: nothing is retried on the connection it gave up', async () => {
    const subject = `closing-${process.pid}`;
    const transport = natsTransport({ servers: broker.url });
    const link = await transport.openProducer(subject, () => undefined);
    // The stream goes away: every publish now meets "no responders", which is retried (50 ms,
    // doubling, up to 8 times) as a broker that is coming back would be.
    const admin = await connect({ servers: broker.url });
    // Node prints its warnings (e.g. more than 10 listeners on one AbortSignal) to stderr.
    const stderr: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
    try {
      await (await jetstreamManager(admin)).streams.delete(`rxb_${subject}`.replace(/[^A-Za-z0-9_-]/g, '_'));
      let attempts = 0;
      let retried!: () => void;
      const everyOneRetried = new Promise<void>((resolve) => (retried = resolve));
      const n = 12; // more than the 10 listeners Node warns about on one AbortSignal
      admin.subscribe(`rxb.${subject}`, { callback: () => void (++attempts >= 2 * n && retried()) });
      await admin.flush();
      let settled = false;
      // n sends, so n messages (one send is one message).
      const sending = Promise.all(Array.from({ length: n }, (_, i) => link.send([{ id: `r${i}`, replyTo: link.replyTo, body: v8Codec.encode(i) }])));
      sending.then(() => undefined, () => undefined).finally(() => void (settled = true));
      await everyOneRetried; // each was published, refused, waited and published again
      await link.close();
      await new Promise((tick) => setImmediate(tick));
      // Left alone, the retries would go on for seconds after close(), keeping the process alive.
      expect(settled).toBe(true);
      await expect(sending).rejects.toThrow();
      expect(stderr).toEqual([]);
    } finally {
      spy.mockRestore();
      await admin.close();
    }
  });

  it('after a crash, a worker takes no more redelivered requests than one batch of them may hold: the next crash charges only those', async () => {
    // JetStream tells a delivery count only by delivering, and every delivery counts: a worker
    // that fetched the other redelivered requests too (to keep them for its next batch) would
    // have them charged a delivery by its crash though it never ran them.
    const subject = `capped-${process.pid}`;
    const transport = natsTransport({ servers: broker.url });
    const producer = await transport.openProducer(subject, () => undefined);
    const options = { claimIdleMs: 300, maxDeliveries: 5, redeliveryCap: (d: number) => redeliveryCap(d, 5, 8) };
    const links: WorkerLink[] = [];
    const join = async (): Promise<WorkerLink> => {
      const link = await transport.openWorker(subject, options);
      links.push(link);
      return link;
    };
    /** Pulls (waiting on the server for redeliveries) until `n` requests came, renewing what it holds as a running worker would. */
    const collect = async (link: WorkerLink, n: number): Promise<Delivery[]> => {
      const got: Delivery[] = [];
      for (let attempt = 0; got.length < n && attempt < 20; attempt++) {
        await link.touch(got);
        got.push(...(await link.pull(n - got.length, true)));
      }
      return got;
    };
    try {
      // One message of ten requests. A worker takes all ten and "crashes": it never answers,
      // renews or hands back anything.
      await producer.send(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, replyTo: producer.replyTo, body: v8Codec.encode(i) })));
      expect((await collect(await join(), 10)).map((d) => d.deliveries)).toEqual(Array(10).fill(1));
      // Another's pull has room for one: it splits the redelivered message into messages it
      // may take (not charged this delivery), takes one request and answers it.
      const survivor = await join();
      const [answered] = await collect(survivor, 1);
      expect(answered.deliveries).toBe(2);
      await survivor.ack([answered]);
      // A worker that starts now takes four of the nine (redeliveryCap(2) = 8 / 2), then
      // crashes too.
      const held = await (await join()).pull(10, true);
      expect(held.map((d) => d.deliveries)).toEqual([2, 2, 2, 2]);
      // Only those four were charged its delivery: the other five come on their second.
      const last = await join();
      const fewest = new Map<string, number>();
      for (let attempt = 0; attempt < 40; attempt++) {
        const got = await last.pull(9, true);
        for (const d of got) fewest.set(d.id, Math.min(d.deliveries, fewest.get(d.id) ?? Infinity));
        await last.ack(got);
        if (got.length === 0 && fewest.size === 9) break;
      }
      const heldIds = new Set(held.map((d) => d.id));
      expect([...fewest].filter(([id]) => heldIds.has(id)).map(([, d]) => d)).toEqual([3, 3, 3, 3]);
      expect([...fewest].filter(([id]) => !heldIds.has(id)).map(([, d]) => d)).toEqual([2, 2, 2, 2, 2]);
    } finally {
      for (const link of links) await link.close();
      await producer.close();
    }
    await expect(natsTransport({ servers: broker.url }).backlog(subject)).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('a link that held a message past its claim hands it back in vain: no -NAK sends it to a third worker while the one that took it over runs it', async () => {
    // JetStream acts on a -NAK sent for an earlier delivery of a message as on one for the
    // current delivery: a late holder's hand-back would redeliver it under the new holder's feet.
    const subject = `late-nak-${process.pid}`;
    // One waiting pull of 5 s spans the redelivery. With pulls that expire every second, as the
    // claim does, nats-server 2.9.10 at times delivered the message twice to the second link
    // (consumer sequences 2 and 3, in one pull) when a pull expired as it redelivered.
    const transport = natsTransport({ servers: broker.url, pollMs: 5000 });
    const options = { claimIdleMs: 1000, maxDeliveries: 5 };
    const producer = await transport.openProducer(subject, () => undefined);
    const first = await transport.openWorker(subject, options);
    const second = await transport.openWorker(subject, options);
    const third = await transport.openWorker(subject, options);
    try {
      await producer.send([0, 1].map((x) => ({ id: `r${x}`, replyTo: producer.replyTo, body: v8Codec.encode(x) })));
      const mine = await first.pull(10, true);
      expect(mine.map((d) => [d.id, d.deliveries])).toEqual([['r0', 1], ['r1', 1]]);
      // The first link stalls past its claim (no renewal): the server hands the message to the second.
      let taken: Delivery[] = [];
      for (let attempt = 0; taken.length === 0 && attempt < 20; attempt++) taken = await second.pull(10, true);
      expect(taken.map((d) => [d.id, d.deliveries, d.reclaimed])).toEqual([['r0', 2, true], ['r1', 2, true]]);
      // The late holder wakes up, renews what it holds, gives up and hands it back; closing
      // flushes its connection, so the server has acted on all it sent before the third link asks.
      await first.touch(mine);
      await first.release(mine);
      await first.close();
      await second.touch(taken); // the new holder renews its claim, as a running worker does: no lapse of its own
      expect((await third.pull(10, false)).map((d) => [d.id, d.deliveries])).toEqual([]);
      await second.ack(taken);
    } finally {
      for (const link of [first, second, third]) await link.close();
      await producer.close();
    }
    await expect(natsTransport({ servers: broker.url }).backlog(subject)).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  describe('one message per producer tick (request packets)', () => {
    const streamOf = (subject: string): string => `rxb_${subject}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const messagesIn = async (subject: string): Promise<number> => {
      const admin = await connect({ servers: broker.url });
      try {
        return (await (await jetstreamManager(admin)).streams.info(streamOf(subject))).state.messages;
      } finally {
        await admin.close();
      }
    };
    const drained = (subject: string): Promise<void> =>
      waitFor(async () => {
        const b = await natsTransport({ servers: broker.url }).backlog(subject);
        return b.waiting === 0 && b.pending === 0;
      }, 'the stream to be empty with nothing pending');
    /** Publishes raw bytes (and headers) to the subject's stream, as a client that is not a producer could. */
    const publishRaw = async (subject: string, body: Uint8Array, options: { headers?: MsgHdrs } = {}): Promise<void> => {
      const raw = await connect({ servers: broker.url });
      try {
        await raw.request(`rxb.${subject}`, body, { ...options, timeout: 5000 }); // the PubAck: stored
      } finally {
        await raw.close();
      }
    };

    it('a tick of 64 calls is one JetStream message, answered call by call', async () => {
      const subject = `tick-${process.pid}`;
      const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url }), subject, { timeoutMs: 20_000 });
      try {
        const calls = Array.from({ length: 64 }, (_, i) => producer.run(i));
        await waitFor(async () => (await natsTransport({ servers: broker.url }).backlog(subject)).waiting > 0, 'the tick to be in the stream');
        expect(await messagesIn(subject)).toBe(1);
        const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => xs.map((x) => x + 1), { maxBatchSize: 64, claimIdleMs: 2000 });
        try {
          await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
        } finally {
          await worker.stop();
        }
        await drained(subject);
      } finally {
        await producer.stop();
      }
    });

    it('a tick over the server\'s max_payload goes as a few messages, each within it', async () => {
      const small = await startNats('max_payload: 16384\n');
      const subject = `big-tick-${process.pid}`;
      const producer = remoteBatcher<Uint8Array, number>(natsTransport({ servers: small.url }), subject, { timeoutMs: 20_000 });
      try {
        const calls = Array.from({ length: 40 }, (_, i) => producer.run(new Uint8Array(1000).fill(i)));
        const admin = await connect({ servers: small.url });
        try {
          const jsm = await jetstreamManager(admin);
          // 40 kB of requests, at most 16 kB a message (less room for headers): four messages.
          const stored = (): Promise<number> => jsm.streams.info(streamOf(subject)).then((info) => info.state.messages, () => 0); // 0 until the producer made the stream
          await waitFor(async () => (await stored()) >= 4, 'the tick to be in the stream');
          expect(await stored()).toBe(4);
          expect((await jsm.streams.info(streamOf(subject))).state.bytes).toBeGreaterThan(40_000);
        } finally {
          await admin.close();
        }
        const worker = await serveBatches<Uint8Array, number>(natsTransport({ servers: small.url }), subject, (xs) => xs.map((x) => x[0] + x.length), { maxBatchSize: 64 });
        try {
          await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 40 }, (_, i) => 1000 + i));
        } finally {
          await worker.stop();
        }
      } finally {
        await producer.stop();
        await small.stop();
      }
    });

    it('a worker that dies holding part of a message: every call is still answered exactly once, each input run once', async () => {
      const subject = `dies-holding-${process.pid}`;
      const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url }), subject, { timeoutMs: 20_000 });
      const dead = await natsTransport({ servers: broker.url }).openWorker(subject, { claimIdleMs: 300, maxDeliveries: 5 });
      try {
        const calls = Array.from({ length: 40 }, (_, i) => producer.run(i));
        // It takes ten of the forty (the other thirty wait in it for its next pull), then "dies":
        // it never answers, renews or hands back anything.
        let taken: Delivery[] = [];
        for (let attempt = 0; taken.length === 0 && attempt < 10; attempt++) taken = await dead.pull(10, true);
        expect(taken).toHaveLength(10);
        const ran: number[] = [];
        const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => (ran.push(...xs), xs.map((x) => 2 * x)), {
          maxBatchSize: 16, claimIdleMs: 300,
        });
        try {
          await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 40 }, (_, i) => 2 * i));
          expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
          expect(producer.stats()).toMatchObject({ succeeded: 40, duplicatesDropped: 0 });
        } finally {
          await worker.stop();
        }
        await drained(subject);
      } finally {
        await dead.close();
        await producer.stop();
      }
    });

    it('a redelivered message bigger than the cap is split: no batch runs more than the cap, the rest is answered later, none charged a delivery it did not run in', async () => {
      const subject = `over-cap-${process.pid}`;
      const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url }), subject, { timeoutMs: 20_000 });
      const dead = await natsTransport({ servers: broker.url }).openWorker(subject, { claimIdleMs: 300, maxDeliveries: 5 });
      try {
        const calls = Array.from({ length: 20 }, (_, i) => producer.run(i));
        let taken: Delivery[] = [];
        for (let attempt = 0; taken.length === 0 && attempt < 10; attempt++) taken = await dead.pull(20, true);
        expect(taken).toHaveLength(20); // all of it, then "dies"
        const batches: { inputs: number[] }[] = [];
        // maxBatchSize 8, maxDeliveries 5: a request on its second delivery runs in batches of at most 4.
        const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => {
          batches.push({ inputs: [...xs] });
          return xs.map((x) => 2 * x);
        }, { maxBatchSize: 8, maxDeliveries: 5, claimIdleMs: 300 });
        try {
          await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
          expect(batches.every((b) => b.inputs.length <= 4)).toBe(true);
          expect(batches.flatMap((b) => b.inputs).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
          // Each moved request was charged only the delivery it ran in: none was refused.
          expect(worker.stats()).toMatchObject({ exhausted: 0, redeliveries: 20 });
        } finally {
          await worker.stop();
        }
        await drained(subject);
      } finally {
        await dead.close();
        await producer.stop();
      }
    });

    it('a message in the per-request header format of earlier producers is served (a rolling upgrade)', async () => {
      const subject = `old-format-${process.pid}`;
      const ran: number[] = [];
      const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs, ctx) => (ran.push(...xs, ctx.priorities[0]), xs.map((x) => x + 1)), {
        maxBatchSize: 8, claimIdleMs: 2000,
      });
      const frames: Uint8Array[] = [];
      const link = await natsTransport({ servers: broker.url }).openProducer(subject, (frame) => frames.push(frame));
      try {
        const message = { id: 'old-1', replyTo: link.replyTo, body: v8Codec.encode(41), priority: 3, deadline: Date.now() + 60_000 };
        await publishRaw(subject, message.body, { headers: requestHeaders(message, message.id) });
        await waitFor(() => frames.length === 1, 'the reply');
        expect(decodeReplies(frames[0])).toEqual([['old-1', 'ok', v8Codec.encode(42)]]);
        expect(ran).toEqual([41, 3]);
        await drained(subject);
      } finally {
        await link.close();
        await worker.stop();
      }
    });

    it('a message that is neither a packet nor a request is acknowledged, never run twice nor left in the stream; a signing worker counts it forged', async () => {
      const subject = `garbage-${process.pid}`;
      const auth = { keys: [randomBytes(32)] };
      const errors: Error[] = [];
      const ran: number[] = [];
      const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => (ran.push(...xs), xs.map((x) => x + 1)), {
        maxBatchSize: 8, claimIdleMs: 300, auth, onError: (e) => errors.push(e),
      });
      const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url }), subject, { auth, timeoutMs: 10_000 });
      try {
        const packet = encodeRequestPacket([{ id: 'x', replyTo: 'y', body: v8Codec.encode(1) }]);
        await publishRaw(subject, randomBytes(40));
        await publishRaw(subject, packet.subarray(0, packet.length - 2)); // a packet cut short
        await waitFor(() => worker.stats().forged === 2, 'both to be dropped as forged');
        expect(errors.map((e) => (e as DroppedMessageError).reason)).toEqual(['forged', 'forged']);
        await expect(producer.run(1)).resolves.toBe(2);
        expect(ran).toEqual([1]);
        await drained(subject);
      } finally {
        await producer.stop();
        await worker.stop();
      }
    });

    it('without signing, such a message is answered to nobody and acknowledged', async () => {
      const subject = `garbage-unsigned-${process.pid}`;
      const worker = await serveBatches<number, number>(natsTransport({ servers: broker.url }), subject, (xs) => xs.map((x) => x + 1), {
        maxBatchSize: 8, claimIdleMs: 300, onError: () => undefined,
      });
      const producer = remoteBatcher<number, number>(natsTransport({ servers: broker.url }), subject, { timeoutMs: 10_000 });
      try {
        await publishRaw(subject, new TextEncoder().encode('not a request'));
        await waitFor(() => worker.stats().pulled === 1, 'the message to be read');
        await drained(subject);
        await expect(producer.run(1)).resolves.toBe(2);
        expect(worker.stats()).toMatchObject({ brokerErrors: 0, redeliveries: 0 });
      } finally {
        await producer.stop();
        await worker.stop();
      }
    });
  });

  describe('users confined by permissions', () => {
    // Producers may append to the subject's stream and hear replies; workers may consume it and
    // answer. Neither may read the stream's messages or create streams; the stream and its
    // consumer are made by an administrator.
    const users = {
      admin: { publish: ['>'], subscribe: ['>'] },
      producer: { publish: ['rxb.double', '$JS.API.INFO', '$JS.API.STREAM.INFO.rxb_double'], subscribe: ['_INBOX_rxb.>'] },
      worker: {
        publish: [
          '$JS.API.INFO', '$JS.API.STREAM.INFO.rxb_double', '$JS.API.CONSUMER.INFO.rxb_double.workers',
          '$JS.API.CONSUMER.MSG.NEXT.rxb_double.workers', '$JS.ACK.rxb_double.>', '_INBOX_rxb.>',
        ],
        subscribe: ['_INBOX_rxb.>'],
      },
    };
    const config = `authorization { users = [\n${Object.entries(users)
      .map(([user, permissions]) => `  { user: ${user}, password: ${user}-password, permissions: ${JSON.stringify(permissions)} }`)
      .join('\n')}\n] }\n`;
    let confined: TestBroker;
    beforeAll(async () => {
      confined = await startNats(config);
    });
    afterAll(async () => {
      await confined?.stop();
    });
    const as = (user: keyof typeof users) =>
      natsTransport({ servers: confined.url, connection: { user, pass: `${user}-password`, inboxPrefix: '_INBOX_rxb' } });

    it('a signing producer and worker work as confined users; the producer can neither read the stream nor pull from the workers’ consumer', async () => {
      // The administrator makes the stream and the durable consumer with the workers' settings.
      const setup = await as('admin').openWorker('double', { claimIdleMs: 300, maxDeliveries: 5 });
      await setup.close();
      const auth = { keys: [randomBytes(32)] };
      const errors: string[] = [];
      const worker = await serveBatches<number, number>(as('worker'), 'double', (xs) => xs.map((x) => 2 * x), {
        maxBatchSize: 16, claimIdleMs: 300, auth, onError: (e) => errors.push(e.message),
      });
      const producer = remoteBatcher<number, number>(as('producer'), 'double', { auth, timeoutMs: 10_000 });
      const snoop = await connect({ servers: confined.url, user: 'producer', pass: 'producer-password', inboxPrefix: '_INBOX_rxb' });
      try {
        await expect(Promise.all([producer.run(21), producer.run(4, { priority: 2, context: 'c' })])).resolves.toEqual([42, 8]);
        // Reading a request from the stream, or pulling from the workers' consumer, is refused.
        await expect(snoop.request('$JS.API.STREAM.MSG.GET.rxb_double', JSON.stringify({ seq: 1 }), { timeout: 2000 })).rejects.toThrow(/Permissions Violation for Publish/);
        await expect(snoop.request('$JS.API.CONSUMER.MSG.NEXT.rxb_double.workers', JSON.stringify({ batch: 1 }), { timeout: 2000 })).rejects.toThrow(/Permissions Violation for Publish/);
        expect(errors).toEqual([]);
      } finally {
        await snoop.close();
        await producer.stop();
        await worker.stop();
      }
    });
  });
});
