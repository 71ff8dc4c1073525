import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox, headers, nanos, type ConnectionOptions, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { reconnectDelays, type LinkEvent } from '../remote/brokerEvents.js';
import type { Backlog, BatchTransport, Delivery, ProducerLink, ReplyFrame, RequestMessage, WorkerLink, WorkerLinkOptions } from '../remote/transport.js';

/**
 * Options of {@link natsTransport}.
 *
 * @example
 * ```ts
 * const options: NatsTransportOptions = { servers: 'nats://10.0.0.7:4222', storage: 'file' };
 * ```
 */
export interface NatsTransportOptions {
  /** Server URLs; the transport connects once and shares the connection. @default 'nats://127.0.0.1:4222' */
  readonly servers?: string | string[];
  /** Extra connection options (auth, TLS, …). */
  readonly connection?: Partial<ConnectionOptions>;
  /** Stream names are `<prefix>_<subject>`, subjects `<prefix>.<subject>`. @default 'rxb' */
  readonly prefix?: string;
  /** The durable pull consumer every worker of a subject shares. @default 'workers' */
  readonly group?: string;
  /** Where JetStream keeps requests. @default 'file' */
  readonly storage?: 'file' | 'memory';
  /** Requests delivered and not acknowledged, group-wide; the server stops delivering beyond it. @default 10000 */
  readonly maxAckPending?: number;
  /** Wait for JetStream's PubAck on each request (a full stream then rejects the call). @default true */
  readonly pubAck?: boolean;
  /** The longest a waiting pull waits on the server for the first request. @default 1000 */
  readonly pollMs?: number;
  /** The wait between the first failed attempt to reconnect and the next (the first is at once); it doubles with each failed attempt. @default 20 */
  readonly reconnectDelayMs?: number;
  /** The longest wait between two attempts to reconnect (at most 60000). @default 1000 */
  readonly maxReconnectDelayMs?: number;
}

/** Where the delivery count sits in a `$JS.ACK` reply subject (v1 has 9 tokens, v2 12 or more). */
function deliveriesOf(ackSubject: string | undefined): number {
  if (ackSubject === undefined) return 1;
  const tokens = ackSubject.split('.');
  const n = Number(tokens.length === 9 ? tokens[4] : tokens[6]);
  return Number.isFinite(n) && n > 0 ? n : 1;
}

const ID_HEADER = 'Rxb-Id';
const REPLY_HEADER = 'Rxb-Reply';
const DEADLINE_HEADER = 'Rxb-Deadline';
/** The codec-encoded `context` of the call, base64 (headers carry text). */
const CONTEXT_HEADER = 'Rxb-Context';
/** The call's priority, when not 0. */
const PRIORITY_HEADER = 'Rxb-Priority';
/** The request's signature, base64, when producers sign (`auth`). */
const MAC_HEADER = 'Rxb-Mac';

/**
 * A transport on NATS JetStream (server ≥ 2.9, with `-js`), with the `@nats-io/transport-node`
 * and `@nats-io/jetstream` 3.x clients. One WorkQueue stream per subject holds the requests;
 * workers share one durable pull consumer. Redelivery is a server timer (`ack_wait` =
 * `claimIdleMs`), `+WPI` renews a running batch's claim, `max_deliver` caps deliveries, and
 * `Nats-Msg-Id` makes a re-sent request idempotent. Replies travel over core NATS.
 *
 * Workers speak the raw pull protocol: a pull that may wait asks for its first message in one
 * waiting request (`expires` = `pollMs`; the server answers at once when one is there), the
 * rest and every top-up with `{ batch, no_wait }` (what is waiting); the gather window (`maxDelayMs`)
 * stays on the client, because the client's `fetch()` waits ≥ 1 s to fill, `consume()` books
 * messages it cannot run yet, and very short server-side expiries can go unanswered. A pull
 * asks for one message first, and for more only after one on its first delivery: JetStream
 * tells a delivery count only by delivering, so after a crash a worker takes no more
 * redelivered requests than one batch of them may hold (`redeliveryCap`).
 *
 * Install `@nats-io/transport-node` and `@nats-io/jetstream` yourself: they are optional
 * peer dependencies of rx-batcher.
 *
 * @example
 * ```ts
 * import { natsTransport, remoteBatcher, serveBatches } from 'rx-batcher/nats';
 * const transport = natsTransport({ servers: process.env.NATS_URL });
 * const worker = await serveBatches(transport, 'scorer', runBatch, { maxBatchSize: 64, maxDelayMs: 2 });
 * const scorer = remoteBatcher<Features, Scores>(transport, 'scorer', { timeoutMs: 2000 });
 * ```
 */
export function natsTransport(options: NatsTransportOptions = {}): BatchTransport {
  const prefix = options.prefix ?? 'rxb';
  const group = options.group ?? 'workers';
  const pollMs = Math.max(1000, options.pollMs ?? 1000);
  const pubAck = options.pubAck ?? true;
  const delays = reconnectDelays('natsTransport', options);
  /** Reconnection attempts since the connection dropped (the client announces each one). */
  let attempts = 0;
  const names = (subject: string): { stream: string; subject: string } => ({
    stream: `${prefix}_${subject}`.replace(/[^A-Za-z0-9_-]/g, '_'),
    subject: `${prefix}.${subject.replace(/[\s*>]/g, '_')}`,
  });

  // One connection per transport, opened on first use and closed with its last link.
  let shared: Promise<{ nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager }> | undefined;
  let users = 0;
  const open = async (): Promise<{ nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager }> => {
    users++;
    shared ??= (async () => {
      const nc = await connect({
        servers: options.servers ?? 'nats://127.0.0.1:4222',
        maxReconnectAttempts: -1,
        // The client asks before each attempt (and again while it waits): the delay grows with
        // the attempts it announced, reconnectDelayMs doubling up to maxReconnectDelayMs.
        reconnectDelayHandler: () => delays.after(Math.max(1, attempts)),
        ...options.connection,
      });
      const statuses = nc.status();
      void (async () => {
        for await (const s of statuses) {
          if (s.type === 'reconnecting') attempts++;
          else if (s.type === 'reconnect') attempts = 0;
        }
      })().catch(() => undefined);
      void nc.closed().then(() => (statuses as { stop?: () => void }).stop?.());
      return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
    })();
    try {
      return await shared;
    } catch (error) {
      users--;
      shared = undefined;
      throw error;
    }
  };
  const release = async (): Promise<void> => {
    if (--users > 0 || shared === undefined) return;
    const { nc } = await shared;
    shared = undefined;
    await nc.drain().catch(() => nc.close());
  };

  const ensureStream = async (jsm: JetStreamManager, subject: string): Promise<void> => {
    const n = names(subject);
    try {
      await jsm.streams.info(n.stream);
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      await jsm.streams.add({
        name: n.stream,
        subjects: [n.subject],
        retention: RetentionPolicy.Workqueue,
        storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
        duplicate_window: nanos(120_000),
      });
    } catch (error) {
      if (!/already in use|already exists/i.test(String((error as Error).message))) throw error;
    }
  };

  return {
    kind: 'nats',

    async openProducer(subject: string, onReplies: (frame: Uint8Array) => void, onEvent?: (event: LinkEvent) => void): Promise<ProducerLink> {
      const { nc, js, jsm } = await open();
      try {
        await ensureStream(jsm, subject);
      } catch (error) {
        await release();
        throw error;
      }
      const target = names(subject).subject;
      const replyTo = createInbox(`_INBOX_${prefix}`);
      const subscription = nc.subscribe(replyTo, { callback: (error, msg) => void (error ?? onReplies(msg.data)) });
      // Replies are core NATS messages: those published while the connection was down are
      // lost. The client re-subscribes on reconnect; once the server has it (a flush), report
      // 'resubscribed', and the producer re-sends what may have been answered (resend below).
      const statuses = nc.status();
      void (async () => {
        for await (const s of statuses) {
          if (s.type === 'disconnect') onEvent?.({ type: 'disconnected', connection: 'connection' });
          else if (s.type === 'reconnect') {
            onEvent?.({ type: 'reconnected', connection: 'connection' });
            nc.flush().then(() => onEvent?.({ type: 'resubscribed', connection: 'replies' }), () => undefined);
          }
        }
      })().catch(() => undefined);
      /** Each request's stream sequence once JetStream acknowledged it (0 while under way). */
      const positions = new WeakMap<RequestMessage, number>();
      let resends = 0;
      /** Aborted by close(): no publish is retried on a connection this link gave up. */
      const closing = new AbortController();
      return {
        replyTo,
        async send(messages: readonly RequestMessage[]): Promise<void> {
          // Published together; each is acknowledged by JetStream on its own.
          await Promise.all(messages.map((m) => sendOne(m, m.id)));
        },
        async resend(messages: readonly RequestMessage[]): Promise<number> {
          let delivered: number | undefined;
          try {
            delivered = (await jsm.consumers.info(names(subject).stream, group)).delivered.stream_seq;
          } catch {
            // no consumer yet, or no right to look: send them all again
          }
          const again = messages.filter((m) => {
            const at = positions.get(m);
            if (at === undefined) return false; // never published: its send is still to come
            return delivered === undefined || at === 0 || at <= delivered;
          });
          // A new Nats-Msg-Id: within the duplicate window JetStream would drop the same one.
          const attempt = ++resends;
          await Promise.all(again.map((m) => sendOne(m, `${m.id}~${attempt}`)));
          return again.length;
        },
        async close(): Promise<void> {
          closing.abort(); // a publish waiting to be retried gives up now
          (statuses as { stop?: () => void }).stop?.(); // the client's iterator ends here; the type does not say so
          subscription.unsubscribe();
          await release();
        },
      };

      async function sendOne(message: RequestMessage, msgID: string): Promise<void> {
        positions.set(message, 0);
        const h = headers();
        h.set(ID_HEADER, message.id);
        h.set(REPLY_HEADER, message.replyTo);
        if (message.deadline !== undefined) h.set(DEADLINE_HEADER, String(message.deadline));
        if (message.context !== undefined) h.set(CONTEXT_HEADER, Buffer.from(message.context).toString('base64'));
        if (message.priority !== undefined) h.set(PRIORITY_HEADER, String(message.priority));
        if (message.mac !== undefined) h.set(MAC_HEADER, Buffer.from(message.mac).toString('base64'));
        if (!pubAck) {
          h.set('Nats-Msg-Id', msgID);
          nc.publish(target, message.body, { headers: h });
          return;
        }
        // Same msgID on every attempt: JetStream's duplicate window makes a retry idempotent.
        for (let attempt = 0; ; attempt++) {
          try {
            positions.set(message, (await js.publish(target, message.body, { msgID, headers: h })).seq);
            return;
          } catch (error) {
            if (attempt >= 8 || closing.signal.aborted || !isTransient(error)) throw error;
            await sleep(Math.min(1000, 50 * 2 ** attempt), closing.signal);
            if (closing.signal.aborted) throw error;
          }
        }
      }
    },

    async openWorker(subject: string, linkOptions: WorkerLinkOptions): Promise<WorkerLink> {
      const { nc, jsm } = await open();
      const n = names(subject);
      const consumerConfig = {
        ack_wait: nanos(Math.max(1, Math.round(linkOptions.claimIdleMs))),
        // One delivery more than maxDeliveries: the worker answers it with an error without running it.
        max_deliver: linkOptions.maxDeliveries + 1,
        max_ack_pending: options.maxAckPending ?? 10_000,
      };
      try {
        await ensureStream(jsm, subject);
        try {
          const info = await jsm.consumers.info(n.stream, group);
          const c = info.config;
          if (c.ack_wait !== consumerConfig.ack_wait || c.max_deliver !== consumerConfig.max_deliver || c.max_ack_pending !== consumerConfig.max_ack_pending) {
            await jsm.consumers.update(n.stream, group, consumerConfig);
          }
        } catch (error) {
          if (!isNotFound(error)) throw error;
          await jsm.consumers.add(n.stream, { durable_name: group, ack_policy: AckPolicy.Explicit, ...consumerConfig });
        }
      } catch (error) {
        await release();
        throw error;
      }

      const nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${n.stream}.${group}`;
      const inbox = createInbox(`_INBOX_${prefix}`);
      /** Messages of pull requests we already gave up on: still ours, served first. */
      const stash: Delivery[] = [];
      let sequence = 0;
      let current: { seq: number; max: number; got: Delivery[]; finish(): void } | undefined;

      const toDelivery = (msg: Msg): Delivery => {
        const deliveries = deliveriesOf(msg.reply);
        const deadline = msg.headers?.get(DEADLINE_HEADER);
        const context = msg.headers?.get(CONTEXT_HEADER);
        const priority = msg.headers?.get(PRIORITY_HEADER);
        const mac = msg.headers?.get(MAC_HEADER);
        return {
          ...(mac ? { mac: new Uint8Array(Buffer.from(mac, 'base64')) } : {}),
          ...(priority ? { priority: Number(priority) } : {}),
          ...(deadline ? { deadline: Number(deadline) } : {}),
          ...(context ? { context: new Uint8Array(Buffer.from(context, 'base64')) } : {}),
          id: msg.headers?.get(ID_HEADER) ?? '',
          replyTo: msg.headers?.get(REPLY_HEADER) ?? '',
          body: msg.data,
          deliveries,
          reclaimed: deliveries > 1,
          handle: msg.reply,
        };
      };
      const subscription = nc.subscribe(`${inbox}.*`, {
        callback: (error, msg) => {
          if (error) return;
          if (msg.data.length === 0 && msg.headers !== undefined && msg.headers.code > 0) {
            // A status (404 no messages, 408 request expired, 409 …) ends the pull it answers;
            // statuses come on the pull's own inbox subject.
            if (current !== undefined && msg.subject === `${inbox}.${current.seq}`) current.finish();
            return;
          }
          // Messages keep their stream subject, so they cannot be told apart by pull: any
          // message is ours, for the pull under way or, beyond it, for the next one.
          const d = toDelivery(msg);
          if (current === undefined || current.got.length >= current.max) {
            stash.push(d);
            return;
          }
          current.got.push(d);
          if (current.got.length >= current.max) current.finish();
        },
      });
      // A reconnect loses the server's pending pull requests: end the current one now.
      // Messages delivered while the connection was down come again after claimIdleMs.
      let closed = false;
      const statuses = nc.status();
      void (async () => {
        for await (const s of statuses) {
          if (closed) break;
          if (s.type === 'disconnect') linkOptions.onEvent?.({ type: 'disconnected', connection: 'connection' });
          if (s.type === 'reconnect') {
            current?.finish();
            linkOptions.onEvent?.({ type: 'reconnected', connection: 'connection' });
          }
        }
      })().catch(() => undefined);

      /** One raw pull request; resolves with what arrived when it ends (status, full, client timeout or abort). */
      const request = (max: number, body: object, clientTimeoutMs: number, signal?: AbortSignal): Promise<Delivery[]> =>
        new Promise((resolve) => {
          const seq = ++sequence;
          const got: Delivery[] = [];
          let timer: ReturnType<typeof setTimeout> | undefined;
          const finish = (): void => {
            if (current?.seq !== seq) return;
            current = undefined;
            clearTimeout(timer);
            signal?.removeEventListener('abort', finish);
            resolve(got);
          };
          current = { seq, max, got, finish };
          timer = setTimeout(finish, clientTimeoutMs);
          signal?.addEventListener('abort', finish);
          nc.publish(nextSubject, JSON.stringify(body), { reply: `${inbox}.${seq}` });
        });

      const publishAll = (deliveries: readonly Delivery[], payload: string): void => {
        for (const d of deliveries) if (typeof d.handle === 'string') nc.publish(d.handle, payload);
      };

      const capOf = linkOptions.redeliveryCap ?? noCap;
      /**
       * A pull takes messages in the order the server hands them out and ends before the first
       * that would make it hold more than `redeliveryCap` allows one of them; that one waits in
       * the stash, first in line for the next pull. JetStream tells a message's delivery count
       * only by delivering it, and a delivery counts even if the worker never runs the message
       * (a NAK hands it back for another delivery that counts too): a worker that crashed holding
       * messages beyond its batch would charge each of them a delivery it was never run in. So
       * the link asks for more than one message only right after one on its first delivery: the
       * server hands out redeliveries before new messages, so none was waiting then. After a
       * redelivery (or with nothing fetched yet) it asks for one at a time.
       */
      const gather = async (max: number, signal?: AbortSignal, fetched?: Delivery[]): Promise<Delivery[]> => {
        const out: Delivery[] = [];
        let limit = max;
        let got = fetched;
        /** How many `got` asked the server for, and whether it came from the server just now (not from the stash). */
        let asked = 1;
        let fresh = fetched !== undefined;
        for (;;) {
          if (got === undefined) {
            if (out.length >= limit || signal?.aborted) break;
            if (stash.length > 0) {
              got = [stash.shift()!];
              asked = 1;
              fresh = false;
            } else {
              const last = out.length === 0 ? undefined : out[out.length - 1];
              asked = fresh && last !== undefined && last.deliveries === 1 ? limit - out.length : 1;
              got = await request(asked, { batch: asked, no_wait: true }, 5000, signal);
              if (got.length === 0) break;
              fresh = true;
            }
          }
          for (let i = 0; i < got.length; i++) {
            const d = got[i];
            const c = capOf(d.deliveries);
            if (out.length >= limit || (out.length > 0 && out.length >= c)) {
              stash.unshift(...got.slice(i));
              return out;
            }
            out.push(d);
            limit = Math.min(limit, c);
          }
          if (fresh && got.length < asked) break; // answered short: nothing more was waiting
          got = undefined;
        }
        return out;
      };

      return {
        async pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]> {
          if (!wait || stash.length > 0) {
            const got = await gather(max, signal);
            if (got.length > 0 || !wait || signal?.aborted) return got;
          }
          if (signal?.aborted) return [];
          // Wait on the server for the first request (it answers at once when one is there: no
          // probe first, whose round trip would delay a request arriving meanwhile), then gather
          // what fits with it.
          const first = await request(1, { batch: 1, expires: nanos(pollMs) }, pollMs + 2000, signal);
          if (first.length === 0 || max === 1 || signal?.aborted) return first;
          return gather(max, signal, first);
        },
        async reply(frames: readonly ReplyFrame[]): Promise<void> {
          for (const { replyTo, frame } of frames) nc.publish(replyTo, frame);
          // While the connection is down the client keeps what was published and sends it, in
          // order, once it is back (the acknowledgements after the replies): not an error.
          // A reply its producer missed meanwhile is sent again by the producer's resend.
          await nc.flush().catch((error: unknown) => {
            if (!isTransient(error)) throw error;
          });
        },
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, '+ACK'); // WorkQueue retention: an acknowledged request leaves the stream
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, '+WPI');
          // The stash is held too: unrenewed, the server would hand it to another worker meanwhile.
          publishAll(stash, '+WPI');
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, '-NAK');
        },
        async close(): Promise<void> {
          closed = true;
          (statuses as { stop?: () => void }).stop?.(); // the client's iterator ends here; the type does not say so
          current?.finish();
          publishAll(stash.splice(0), '-NAK');
          subscription.unsubscribe();
          await nc.flush().catch(() => undefined);
          await release();
        },
      };
    },

    async backlog(subject: string): Promise<Backlog> {
      const { jsm } = await open();
      try {
        const n = names(subject);
        try {
          const info = await jsm.consumers.info(n.stream, group);
          return { waiting: info.num_pending, pending: info.num_ack_pending };
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
        try {
          const info = await jsm.streams.info(n.stream);
          return { waiting: info.state.messages, pending: 0 };
        } catch (error) {
          if (!isNotFound(error)) throw error;
          return { waiting: 0, pending: 0 };
        }
      } finally {
        await release();
      }
    },
  };
}

/** Without `redeliveryCap`: no limit. */
function noCap(): number {
  return Infinity;
}

function isNotFound(error: unknown): boolean {
  return /not found/i.test(String((error as Error)?.message));
}

/** Worth retrying: the server is away, restarting, or (just after a restart) still starting JetStream. */
function isTransient(error: unknown): boolean {
  return /timeout|no responders|503|disconnect|reconnect|closed|jetstream is not enabled|JetStreamNotEnabled/i.test(`${(error as Error)?.name} ${(error as Error)?.message}`);
}

/** Resolves after `ms`, or at once when `signal` aborts (the timer is cleared: nothing keeps the process alive). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
