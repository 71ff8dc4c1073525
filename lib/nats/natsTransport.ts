import { AckPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox, nanos, type ConnectionOptions, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { reconnectDelays, type LinkEvent } from '../remote/brokerEvents.js';
import { JetStreamPublisher } from './jetStreamPublisher.js';
import { requestFields, requestHeaders } from './requestHeaders.js';
import { isTransient } from './transientError.js';
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
  /**
   * Extra connection options (auth, TLS, …). `timeout` (how long one connection attempt may
   * take, handshake included) defaults to 5000 ms here, not the client's 20 000: the client
   * notices a connection that drops after the server's greeting and before its handshake ends
   * only when that time is up, and stays disconnected meanwhile.
   */
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

/** JetStream's acknowledgements, encoded once: a string payload would be encoded on every publish. */
const ACK = new TextEncoder().encode('+ACK');
/** Work in progress: renews a claim without counting a delivery. */
const WPI = new TextEncoder().encode('+WPI');
const NAK = new TextEncoder().encode('-NAK');

/** Where the delivery count sits in a `$JS.ACK` reply subject (v1 has 9 tokens, v2 12 or more). */
function deliveriesOf(ackSubject: string | undefined): number {
  if (ackSubject === undefined) return 1;
  // Found by scanning for dots: split() would make a dozen strings per delivered message.
  const dots: number[] = [];
  for (let i = ackSubject.indexOf('.'); i !== -1; i = ackSubject.indexOf('.', i + 1)) dots.push(i);
  const token = dots.length === 8 ? 4 : 6;
  if (dots.length < token + 1) return 1;
  const n = Number(ackSubject.slice(dots[token - 1] + 1, dots[token]));
  return Number.isFinite(n) && n > 0 ? n : 1;
}

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
  let shared: Promise<{ nc: NatsConnection; jsm: JetStreamManager }> | undefined;
  let users = 0;
  const open = async (): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> => {
    users++;
    shared ??= (async () => {
      const nc = await connect({
        servers: options.servers ?? 'nats://127.0.0.1:4222',
        maxReconnectAttempts: -1,
        // The client asks before each attempt (and again while it waits): the delay grows with
        // the attempts it announced, reconnectDelayMs doubling up to maxReconnectDelayMs.
        reconnectDelayHandler: () => delays.after(Math.max(1, attempts)),
        // A connection cut midway through its handshake is noticed only when this ends.
        timeout: HANDSHAKE_TIMEOUT_MS,
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
      return { nc, jsm: await jetstreamManager(nc) };
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
      const { nc, jsm } = await open();
      try {
        await ensureStream(jsm, subject);
      } catch (error) {
        await release();
        throw error;
      }
      const target = names(subject).subject;
      const replyTo = createInbox(`_INBOX_${prefix}`);
      const subscription = nc.subscribe(replyTo, { callback: (error, msg) => void (error ?? onReplies(msg.data)) });
      /**
       * Where each request went in the stream: 0 while its publish is under way (or when
       * published without waiting for its PubAck), then its stream sequence, kept on the message
       * itself (a WeakMap entry per request cost more CPU than its header block). After a
       * resubscribe, a request after the consumer's last delivered sequence need not be sent again.
       */
      const place = (m: RequestMessage, seq: number): void => {
        if (Object.isExtensible(m)) (m as Placed)[POSITION] = seq;
      };
      const publisher = pubAck ? new JetStreamPublisher<RequestMessage>(nc, target, place, { inboxPrefix: `_INBOX_${prefix}` }) : undefined;
      // Replies are core NATS messages: those published while the connection was down are
      // lost. The client re-subscribes on reconnect; once the server has it (a flush), report
      // 'resubscribed', and the producer re-sends what may have been answered (resend below).
      const statuses = nc.status();
      void (async () => {
        for await (const s of statuses) {
          if (s.type === 'disconnect') onEvent?.({ type: 'disconnected', connection: 'connection' });
          else if (s.type === 'reconnect') {
            // What the client buffered while the connection was down is gone: publish again, at
            // once, what JetStream has not acknowledged (the same Nats-Msg-Id: a copy it has is dropped).
            publisher?.republish();
            onEvent?.({ type: 'reconnected', connection: 'connection' });
            nc.flush().then(() => onEvent?.({ type: 'resubscribed', connection: 'replies' }), () => undefined);
          }
        }
      })().catch(() => undefined);
      let resends = 0;
      /** Publishes `messages` with these Nats-Msg-Ids (the request's id, or a new one to send it again). */
      const publish = (messages: readonly RequestMessage[], msgID: (m: RequestMessage) => string): Promise<void> => {
        for (const m of messages) place(m, 0);
        if (publisher !== undefined) return publisher.publish(messages.map((m) => ({ key: m, body: m.body, headers: requestHeaders(m, msgID(m)) })));
        try {
          for (const m of messages) nc.publish(target, m.body, { headers: requestHeaders(m, msgID(m)) });
        } catch (error) {
          return Promise.reject(error); // a closed or draining connection
        }
        return Promise.resolve();
      };
      return {
        replyTo,
        send(messages: readonly RequestMessage[]): Promise<void> {
          // Published together; each is acknowledged by JetStream on its own.
          return publish(messages, (m) => m.id);
        },
        async resend(messages: readonly RequestMessage[]): Promise<number> {
          let delivered: number | undefined;
          try {
            delivered = (await jsm.consumers.info(names(subject).stream, group)).delivered.stream_seq;
          } catch {
            // no consumer yet, or no right to look: send them all again
          }
          const again = messages.filter((m) => {
            if (!Object.isExtensible(m)) return true; // its place could not be kept: send it again
            const at = (m as Placed)[POSITION];
            if (at === undefined) return false; // never published: its send is still to come
            return delivered === undefined || at === 0 || at <= delivered;
          });
          // A new Nats-Msg-Id: within the duplicate window JetStream would drop the same one.
          const attempt = ++resends;
          await publish(again, (m) => `${m.id}~${attempt}`);
          return again.length;
        },
        async close(): Promise<void> {
          publisher?.close(); // a publish waiting to be retried gives up now
          (statuses as { stop?: () => void }).stop?.(); // the client's iterator ends here; the type does not say so
          subscription.unsubscribe();
          await release();
        },
      };
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
        const { id, replyTo, deadline, context, priority, mac } = requestFields(msg);
        // Built by assignment: conditional spreads cost a temporary object and a copy each.
        const d: { -readonly [K in keyof Delivery]: Delivery[K] } = { id, replyTo, body: msg.data, deliveries, reclaimed: deliveries > 1, handle: msg.reply };
        if (mac) d.mac = Buffer.from(mac, 'base64');
        if (priority) d.priority = Number(priority);
        if (deadline) d.deadline = Number(deadline);
        if (context) d.context = Buffer.from(context, 'base64');
        return d;
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

      const publishAll = (deliveries: readonly Delivery[], payload: Uint8Array): void => {
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
        async finish(frames: readonly ReplyFrame[], deliveries: readonly Delivery[]): Promise<void> {
          // One connection keeps order: the server has every reply before the first +ACK. A reply
          // the client refuses (it throws) leaves the requests unacknowledged, to be run again.
          for (const { replyTo, frame } of frames) nc.publish(replyTo, frame);
          publishAll(deliveries, ACK);
          // One flush for both; a connection that is down sends them, in order, once it is back.
          await nc.flush().catch((error: unknown) => {
            if (!isTransient(error)) throw error;
          });
        },
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, ACK); // WorkQueue retention: an acknowledged request leaves the stream
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, WPI);
          // The stash is held too: unrenewed, the server would hand it to another worker meanwhile.
          publishAll(stash, WPI);
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          publishAll(deliveries, NAK);
        },
        async close(): Promise<void> {
          closed = true;
          (statuses as { stop?: () => void }).stop?.(); // the client's iterator ends here; the type does not say so
          current?.finish();
          publishAll(stash.splice(0), NAK);
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

/**
 * How long one connection attempt may take (the client's `timeout`): @nats-io/nats-core 3.4
 * waits this long for the handshake's PONG even when the socket closed after the server's
 * INFO (its 20 s default stalled every connection of a busy test run for longer than its
 * requests' deadlines).
 */
const HANDSHAKE_TIMEOUT_MS = 5000;
/** Where the producer link keeps a request's stream sequence (0: under way) on the message. */
const POSITION = Symbol('rx-batcher.nats.position');
type Placed = RequestMessage & { [POSITION]?: number };

/** Without `redeliveryCap`: no limit. */
function noCap(): number {
  return Infinity;
}

function isNotFound(error: unknown): boolean {
  return /not found/i.test(String((error as Error)?.message));
}
