import { AckPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox, nanos, type ConnectionOptions, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { reconnectDelays, type LinkEvent } from '../remote/brokerEvents.js';
import { randomUUID } from 'node:crypto';
import { PackedEntries, type EntryWork, type PackedEntry } from '../remote/packedEntries.js';
import { decodeRequestPacket, encodeRequestPacket, type PackedRequest } from '../remote/requestPacket.js';
import { JetStreamPublisher } from './jetStreamPublisher.js';
import { packetHeaders, requestFields } from './requestHeaders.js';
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
  /** Wait for JetStream's PubAck on each message (one per producer tick; a full stream then rejects its calls). @default true */
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
 * `Nats-Msg-Id` makes a re-sent message idempotent. Replies travel over core NATS.
 *
 * A producer's `send` (every request of one event-loop turn) is one JetStream message, a
 * request packet (a few when over the server's `max_payload`): JetStream's work is per
 * message. A worker takes messages whole and hands their requests out one by one: a message
 * is acknowledged once all its requests are answered, and what a pull had no room for waits
 * in the worker (renewed) for its next pull. Workers also read the per-request header
 * messages of earlier producers (upgrade workers first); `backlog()` counts messages, not
 * requests.
 *
 * Workers speak the raw pull protocol: a pull that may wait asks for its first message in one
 * waiting request (`expires` = `pollMs`; the server answers at once when one is there), the
 * rest and every top-up with `{ batch, no_wait }` (what is waiting); the gather window (`maxDelayMs`)
 * stays on the client, because the client's `fetch()` waits ≥ 1 s to fill, `consume()` books
 * messages it cannot run yet, and very short server-side expiries can go unanswered. A pull
 * asks for one message first, and for more only after one on its first delivery: JetStream
 * tells a delivery count only by delivering, so after a crash a worker takes no more
 * redelivered requests than one batch of them may hold (`redeliveryCap`; a bigger redelivered
 * message is split into messages that fit).
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
      if (/already in use|already exists/i.test(String((error as Error).message))) return;
      // Two links adding the same stream at once: the second can be told its subjects overlap
      // "an existing stream", which is the stream the first just added (seen in a loaded test
      // run). Fine if that stream is ours; another stream holding our subject is a real error.
      if (!/subjects overlap/i.test(String((error as Error).message))) throw error;
      try {
        await jsm.streams.info(n.stream);
      } catch {
        throw error;
      }
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
       * Where each request went in the stream: 0 while its packet's publish is under way (or
       * when published without waiting for its PubAck), then its packet's stream sequence, kept
       * on the message itself (a WeakMap entry per request cost more CPU than its header block).
       * After a resubscribe, a request after the consumer's last delivered sequence need not be
       * sent again.
       */
      const place = (m: RequestMessage, seq: number): void => {
        if (Object.isExtensible(m)) (m as Placed)[POSITION] = seq;
      };
      const placeAll = (packet: readonly RequestMessage[], seq: number): void => {
        for (const m of packet) place(m, seq);
      };
      const publisher = pubAck ? new JetStreamPublisher<readonly RequestMessage[]>(nc, target, placeAll, { inboxPrefix: `_INBOX_${prefix}` }) : undefined;
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
      /**
       * Publishes `messages` as packets, one JetStream message each (as many as the server's
       * max_payload needs), with the Nats-Msg-Id `<first id>/<count>` and `suffix` (a resend's).
       */
      const publish = (messages: readonly RequestMessage[], suffix: string): Promise<void> => {
        if (messages.length === 0) return Promise.resolve();
        for (const m of messages) place(m, 0);
        const packets = packetsOf(messages, packetLimit(nc));
        if (publisher !== undefined) {
          return publisher.publish(packets.map((packet) => ({
            key: packet, body: encodeRequestPacket(packet), headers: packetHeaders(`${packet[0].id}/${packet.length}${suffix}`),
          })));
        }
        try {
          for (const packet of packets) nc.publish(target, encodeRequestPacket(packet), { headers: packetHeaders(`${packet[0].id}/${packet.length}${suffix}`) });
        } catch (error) {
          return Promise.reject(error); // a closed or draining connection
        }
        return Promise.resolve();
      };
      return {
        replyTo,
        send(messages: readonly RequestMessage[]): Promise<void> {
          // One JetStream message for the tick (a few for a tick over max_payload): JetStream's
          // work is per message, so this is most of what a request costs the server.
          return publish(messages, '');
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
          await publish(again, `~${++resends}`);
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
      /** Messages of pull requests we already gave up on (or beyond a pull's count): still ours, taken first. */
      const stash: PackedEntry<string>[] = [];
      /** The requests of the messages taken: handed out one by one; what a pull leaves is held or moved here. */
      const entries = new PackedEntries<string>(linkOptions.redeliveryCap);
      let sequence = 0;
      let current: { seq: number; max: number; got: PackedEntry<string>[]; finish(): void } | undefined;
      /**
       * When each message held here was last claimed (delivered, or renewed with `+WPI`), by its
       * ack subject (one per delivery). JetStream acts on a `-NAK` sent for an earlier delivery
       * as on one for the current: a worker that stalled past `ack_wait` and then handed a
       * message back would have it delivered to a third worker while the one that took it over
       * runs it. So a message goes back only while its claim is surely still this link's (less
       * than three quarters of `claimIdleMs` since it was last claimed, the rest a margin for
       * the trip to the server); one whose claim may have lapsed is left to its redelivery,
       * made already or due within that margin.
       */
      const claimedAt = new Map<string, number>();
      const claimTrustedMs = linkOptions.claimIdleMs * 0.75;

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
          const entry = toEntry(msg);
          claimedAt.set(entry.ref, performance.now());
          if (current === undefined || current.got.length >= current.max) {
            stash.push(entry);
            return;
          }
          current.got.push(entry);
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

      /** One raw pull request for `max` messages; resolves with what arrived when it ends (status, full, client timeout or abort). */
      const request = (max: number, body: object, clientTimeoutMs: number, signal?: AbortSignal): Promise<PackedEntry<string>[]> =>
        new Promise((resolve) => {
          const seq = ++sequence;
          const got: PackedEntry<string>[] = [];
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

      /**
       * Acknowledges (`+ACK`), renews (`+WPI`) or hands back (`-NAK`) messages by their ack
       * subjects; a hand-back only of those whose claim is still trusted ({@link claimedAt}).
       */
      const signal = (refs: readonly string[], payload: Uint8Array): void => {
        const at = performance.now();
        for (const ref of refs) {
          if (ref === '') continue;
          const claimed = claimedAt.get(ref);
          const trusted = claimed !== undefined && at - claimed < claimTrustedMs;
          if (payload === WPI) {
            // A renewal keeps a trusted claim trusted; one that may have lapsed stays so (the
            // server may have delivered it again meanwhile: the +WPI only renews it for whoever holds it).
            if (trusted) claimedAt.set(ref, at);
          } else {
            claimedAt.delete(ref);
            if (payload === NAK && !trusted) continue;
          }
          nc.publish(ref, payload);
        }
      };
      /** Publishes requests moved out of messages as new messages, one per run (each request with its `earlier` deliveries). */
      let mover: JetStreamPublisher<null> | undefined;
      const append = (runs: readonly (readonly PackedRequest[])[]): Promise<void> => {
        mover ??= new JetStreamPublisher<null>(nc, n.subject, () => undefined, { inboxPrefix: `_INBOX_${prefix}` });
        const limit = packetLimit(nc);
        return mover.publish(runs.flatMap((run) => packetsOf(run, limit)).map((packet) => ({
          key: null,
          body: encodeRequestPacket(packet, (i) => packet[i].earlier),
          headers: packetHeaders(`moved-${randomUUID()}`),
        })));
      };
      /**
       * Carries out what the ledger says, in its order: moved requests are stored anew (JetStream
       * acknowledged them) before the messages they came from are acknowledged; what is handed
       * back whole is NAKed. A failed append leaves those messages unacknowledged: they are
       * delivered again after claimIdleMs (at least once, never lost).
       */
      const carryOut = async (work: EntryWork<string>): Promise<void> => {
        signal(work.handBack, NAK);
        if (work.again.length > 0) await append(work.again);
        signal(work.acknowledge, ACK);
      };

      const capOf = linkOptions.redeliveryCap ?? noCap;
      /** The fewest requests a pull holding one of `entry`'s may hold (Infinity: none is redelivered). */
      const capOfEntry = (entry: PackedEntry<string>): number => {
        let c = Infinity;
        for (const r of entry.requests) c = Math.min(c, capOf(r.earlier + entry.deliveries));
        return c;
      };
      /**
       * A pull takes messages in the order the server hands them out, and their requests in
       * order through the ledger ({@link PackedEntries.take}); what is left of a message on its
       * first delivery is held for the next pull. JetStream tells a message's delivery count
       * only by delivering it, and a delivery counts even if the worker never runs the message
       * (a NAK hands it back for another delivery that counts too): a worker that crashed
       * holding messages beyond its batch would charge each of their requests a delivery it was
       * never run in. So a pull holds no more of any request than `redeliveryCap` allows for
       * it: a message with redelivered requests is taken whole when it fits the pull, waits
       * for the next pull when other requests came first, and is split when it is bigger than
       * a pull may hold. The link asks for more than one message only right after one on its
       * first delivery (the server hands out redeliveries before new messages, so none was
       * waiting then), and then for as many as fit the room at the requests per message seen
       * lately. After a redelivery (or with nothing fetched yet) it asks for one.
       */
      const gather = async (max: number, abort?: AbortSignal, first: PackedEntry<string>[] = []): Promise<Delivery[]> => {
        const fetched: PackedEntry<string>[] = [];
        // What the ledger will hand out (take's rule, counted ahead): fetch until it is full.
        let count = entries.heldCount;
        let limit = max;
        /** Whether the last message taken was on its first delivery (so more may be asked for). */
        let firstDelivery = false;
        let stop = false;
        /** Takes `got` in order; what cannot be taken in this pull waits in the stash, first in line. */
        const consider = async (got: PackedEntry<string>[]): Promise<void> => {
          for (let i = 0; i < got.length; i++) {
            const entry = got[i];
            const c = capOfEntry(entry);
            const size = entry.requests.length;
            if (c !== Infinity && size > Math.min(limit, c) - count) {
              if (count > 0) {
                stash.unshift(...got.slice(i));
                stop = true;
                return;
              }
              // Too big for any pull: the ledger cuts it (take), and nothing of it is handed out.
              fetched.push(entry);
              firstDelivery = false;
              continue;
            }
            fetched.push(entry);
            firstDelivery = entry.deliveries === 1;
            for (let k = 0; k < size && count < limit; k++) {
              count++;
              if (c !== Infinity) limit = Math.min(limit, c);
            }
          }
        };
        await consider(first);
        let fromServer = first.length > 0;
        while (!stop && count < limit && !abort?.aborted) {
          if (stash.length > 0) {
            fromServer = false;
            await consider([stash.shift()!]);
            continue;
          }
          // Not beyond the room (rounded down): JetStream sends redeliveries first, and a message
          // fetched is charged a delivery whether or not this pull runs it.
          const asked = fromServer && firstDelivery ? Math.max(1, Math.floor((limit - count) / Math.max(1, entries.meanEntrySize))) : 1;
          const got = await request(asked, { batch: asked, no_wait: true }, 5000, abort);
          fromServer = true;
          await consider(got);
          if (got.length < asked) break; // answered short: nothing more was waiting
        }
        const { deliveries, work } = entries.take(max, fetched);
        if (work.again.length > 0 || work.acknowledge.length > 0) await carryOut(work).catch(() => undefined);
        return deliveries;
      };

      return {
        async pull(max: number, wait: boolean, abort?: AbortSignal): Promise<Delivery[]> {
          if (!wait || stash.length > 0 || entries.heldCount > 0) {
            const got = await gather(max, abort);
            if (got.length > 0 || !wait || abort?.aborted) return got;
          }
          if (abort?.aborted) return [];
          // Wait on the server for the first message (it answers at once when one is there: no
          // probe first, whose round trip would delay a request arriving meanwhile), then gather
          // what fits with it.
          const first = await request(1, { batch: 1, expires: nanos(pollMs) }, pollMs + 2000, abort);
          if (first.length === 0) return [];
          return gather(max, abort, first);
        },
        async reply(frames: readonly ReplyFrame[]): Promise<void> {
          // A request read from a message that is not one has no reply address: nobody to answer.
          for (const { replyTo, frame } of frames) if (replyTo !== '') nc.publish(replyTo, frame);
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
          for (const { replyTo, frame } of frames) if (replyTo !== '') nc.publish(replyTo, frame);
          // A message is acknowledged once every request of it is answered (or moved).
          await carryOut(entries.settle(deliveries, 'done'));
          // One flush for both; a connection that is down sends them, in order, once it is back.
          await nc.flush().catch((error: unknown) => {
            if (!isTransient(error)) throw error;
          });
        },
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          await carryOut(entries.settle(deliveries, 'done')); // WorkQueue retention: an acknowledged message leaves the stream
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          // The held requests' messages and the stash are ours too: unrenewed, the server would
          // hand them to another worker meanwhile.
          signal(entries.entriesOf(deliveries), WPI);
          signal(stash.map((entry) => entry.ref), WPI);
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          await carryOut(entries.settle(deliveries, 'released'));
        },
        async close(): Promise<void> {
          closed = true;
          (statuses as { stop?: () => void }).stop?.(); // the client's iterator ends here; the type does not say so
          current?.finish();
          await carryOut(entries.settle(entries.drain(), 'released')).catch(() => undefined);
          signal(stash.splice(0).map((entry) => entry.ref), NAK);
          mover?.close();
          subscription.unsubscribe();
          await nc.flush().catch(() => undefined);
          await release();
        },
      };
    },

    /**
     * In messages, not requests: the consumer's `num_pending` and `num_ack_pending` (a message
     * holds one producer tick's requests; counting those would mean reading every message).
     */
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

/**
 * A delivered message as a ledger entry: its ack subject, delivery count and requests.
 *
 * @example
 * ```ts
 * const entry = toEntry(msg); // { ref: msg.reply, deliveries: 1, reclaimed: false, requests: [...] }
 * ```
 */
export function toEntry(msg: Msg): PackedEntry<string> {
  const deliveries = deliveriesOf(msg.reply);
  return { ref: msg.reply ?? '', deliveries, reclaimed: deliveries > 1, requests: requestsOf(msg) };
}

/**
 * The requests of a JetStream message: a packet ({@link encodeRequestPacket}), or one request
 * in the headers (`Rxb-Id`, …) of a message published by a producer of an earlier version (a
 * rolling upgrade). A message that is neither (a client that is not a producer wrote it) is
 * handed out as one request as it is, without a reply address: a signing worker drops it as
 * forged, one that does not answers nobody; both acknowledge it.
 *
 * @example
 * ```ts
 * const requests = requestsOf(msg);
 * ```
 */
export function requestsOf(msg: Msg): PackedRequest[] {
  const fields = requestFields(msg);
  if (fields.id === '') {
    const packet = decodeRequestPacket(msg.data);
    if (packet !== undefined) return packet;
  }
  // Built by assignment: conditional spreads cost a temporary object and a copy each.
  const r: { -readonly [K in keyof PackedRequest]: PackedRequest[K] } = { id: fields.id, replyTo: fields.replyTo, body: msg.data, earlier: 0 };
  if (fields.mac) r.mac = Buffer.from(fields.mac, 'base64');
  if (fields.priority) r.priority = Number(fields.priority);
  if (fields.deadline) r.deadline = Number(fields.deadline);
  if (fields.context) r.context = Buffer.from(fields.context, 'base64');
  return [r];
}

/**
 * The most bytes of requests one packet may carry on this connection: the server's
 * `max_payload` less room for the header block and the packet's framing.
 */
function packetLimit(nc: NatsConnection): number {
  const max = nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  return Math.max(1024, max - PACKET_HEADROOM);
}

/**
 * `messages` cut into runs whose packets fit `limit` bytes (a request bigger than that alone:
 * the server refuses it, and its call fails as before). Sizes are counted from above (every
 * request with its own reply address).
 */
function packetsOf<M extends RequestMessage>(messages: readonly M[], limit: number): M[][] {
  let total = 0;
  const sizes = new Array<number>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    sizes[i] = sizeOf(messages[i]);
    total += sizes[i];
  }
  if (total <= limit) return [messages as M[]];
  const out: M[][] = [];
  let run: M[] = [];
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    if (run.length > 0 && bytes + sizes[i] > limit) {
      out.push(run);
      run = [];
      bytes = 0;
    }
    run.push(messages[i]);
    bytes += sizes[i];
  }
  if (run.length > 0) out.push(run);
  return out;
}

/** An upper bound of a request's bytes in a packet (ids and addresses are ASCII or counted at 3 bytes a character). */
function sizeOf(m: RequestMessage): number {
  return 40 + 3 * (m.id.length + m.replyTo.length) + m.body.byteLength + (m.context?.byteLength ?? 0) + (m.mac?.byteLength ?? 0);
}

/** The server's default max_payload (1 MiB), when the connection has not said. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left in a message for its header block and the packet's own header. */
const PACKET_HEADROOM = 4096;

/** Without `redeliveryCap`: no limit. */
function noCap(): number {
  return Infinity;
}

function isNotFound(error: unknown): boolean {
  return /not found/i.test(String((error as Error)?.message));
}
