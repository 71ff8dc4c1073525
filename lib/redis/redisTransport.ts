import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import { reconnectDelays, type LinkEvent } from '../remote/brokerEvents.js';
import type { Backlog, BatchTransport, Delivery, ProducerLink, ReplyFrame, RequestMessage, WorkerLink, WorkerLinkOptions } from '../remote/transport.js';
import { PackedEntries, entryOf, type EntryWork, type PackedEntry } from '../remote/packedEntries.js';
import { encodeRequestPacket, type PackedRequest } from '../remote/requestPacket.js';
import { PACKET_FIELD, entryRequestCount, entryRequests, toBuffer } from './entryFields.js';
import { finishByScript, mayFinishByScript } from './finishScript.js';
import { handBackByScript, handBackChecked, mayHandBackByScript } from './handBackScript.js';

/**
 * Options of {@link redisTransport}.
 *
 * @example
 * ```ts
 * const options: RedisTransportOptions = { url: 'redis://10.0.0.5:6379', prefix: 'prod' };
 * ```
 */
export interface RedisTransportOptions {
  /** `redis://host:port/db`, `rediss://…`, or a unix socket path. @default 'redis://127.0.0.1:6379' */
  readonly url?: string;
  /** Extra ioredis options (password, TLS, …), merged over the URL's. The protocol is always RESP2. */
  readonly redis?: RedisOptions;
  /** Keys are `<prefix>:<subject>` (the stream) and `<prefix>:reply:<producer>` (reply channels). @default 'rxb' */
  readonly prefix?: string;
  /** The consumer group every worker of a subject joins. @default 'workers' */
  readonly group?: string;
  /** The longest a waiting pull blocks in `XREADGROUP … BLOCK` before looking for abandoned requests again. @default 1000 */
  readonly pollMs?: number;
  /** The wait before the first attempt to reconnect a dropped connection; it doubles with each failed attempt. @default 20 */
  readonly reconnectDelayMs?: number;
  /** The longest wait between two attempts to reconnect (at most 60000). @default 1000 */
  readonly maxReconnectDelayMs?: number;
}

/** The tuple shapes of stream replies, read with `callBuffer` so payloads stay bytes. */
type RawEntry = [id: Buffer, fields: Buffer[] | null];
type RawRead = [key: Buffer, entries: RawEntry[]][] | null;
type RawAutoClaim = [cursor: Buffer, entries: RawEntry[], deleted?: Buffer[]];
type RawPendingRow = [id: string, consumer: string, idleMs: number, deliveries: number];

/**
 * A transport on Redis Streams (Redis ≥ 6.2), with ioredis. One stream per subject holds the
 * requests, one entry per producer tick: a producer appends each turn of the event loop's
 * requests as one request packet with one `XADD … * q <packet>` (at most 64 requests an entry:
 * a bigger tick is several, pipelined in order). Workers share the stream through a consumer
 * group (`XREADGROUP`, about as many entries as their room holds) and hand the requests of an
 * entry out one by one (holding what a pull has no room for, and renewing its claim); an entry
 * is acknowledged (`XACK` + `XDEL`) once every request of it is answered, after replying over
 * pub/sub, in one script call (or MULTI/EXEC for a user that may not run scripts). Workers
 * reclaim entries of dead workers after `claimIdleMs` (`XPENDING … IDLE` then `XCLAIM`, about as
 * many entries as one batch of them may hold, under `redeliveryCap`; `XAUTOCLAIM` without),
 * split a redelivered entry (reclaimed, or appended again by a worker) that a pull may not run
 * whole under the cap into entries that it may (appended again uncharged, the old one
 * acknowledged in the same step), and renew their
 * claims with `XCLAIM … JUSTID` (only entries they still own). Entries of the earlier
 * format (one request per entry, from producers before this version) are read too: upgrade
 * workers first. The stream is never trimmed with `MAXLEN` (that would drop requests nobody
 * has run). `backlog()` counts requests, reading the stream's entries (`XRANGE`, a thousand at a
 * time): a call costs in proportion to the backlog, and a partly answered entry counts whole
 * as pending.
 *
 * Each producer or worker uses two connections (one blocks or subscribes). Install `ioredis`
 * yourself: it is an optional peer dependency of rx-batcher.
 *
 * @example
 * ```ts
 * import { redisTransport, remoteBatcher, serveBatches } from 'rx-batcher/redis';
 * const transport = redisTransport({ url: process.env.REDIS_URL });
 * const worker = await serveBatches(transport, 'scorer', runBatch, { maxBatchSize: 64, maxDelayMs: 2 });
 * const scorer = remoteBatcher<Features, Scores>(transport, 'scorer', { timeoutMs: 2000 });
 * ```
 */
export function redisTransport(options: RedisTransportOptions = {}): BatchTransport {
  const prefix = options.prefix ?? 'rxb';
  const group = options.group ?? 'workers';
  const pollMs = options.pollMs ?? 1000;
  const delays = reconnectDelays('redisTransport', options);
  /**
   * A connection that reports its drops and returns to `onEvent` (as `role`) instead of
   * printing them: ioredis writes "Unhandled error event" to stderr for a connection without
   * an error listener. Reconnects after `reconnectDelayMs`, doubling up to `maxReconnectDelayMs`.
   */
  const connect = (name: string, role: string, onEvent?: (event: LinkEvent) => void, overrides?: RedisOptions): Redis => {
    const url = options.url ?? 'redis://127.0.0.1:6379';
    // maxRetriesPerRequest null: commands wait through a broker restart; callers' deadlines bound the wait.
    // RESP2: stream replies keep the documented nested-array shapes (RESP3 turns XREADGROUP's into a map).
    const extra: RedisOptions = {
      connectionName: name, maxRetriesPerRequest: null, retryStrategy: (attempt) => delays.after(attempt),
      ...options.redis, protocol: 2, ...overrides,
    };
    const connection = new Redis(url, extra);
    let state: 'new' | 'up' | 'down' = 'new';
    let lastError: Error | undefined;
    connection.on('error', (error: Error) => void (lastError = error));
    connection.on('ready', () => {
      if (state === 'down') onEvent?.({ type: 'reconnected', connection: role });
      state = 'up';
      lastError = undefined;
    });
    connection.on('close', () => {
      if (state !== 'up' || closing.has(connection)) return;
      state = 'down';
      onEvent?.({ type: 'disconnected', connection: role, ...(lastError !== undefined ? { error: lastError } : {}) });
      lastError = undefined;
    });
    return connection;
  };
  /** Connections closed on purpose: their 'close' is no drop. */
  const closing = new WeakSet<Redis>();
  const quit = (connection: Redis): void => {
    closing.add(connection);
    connection.disconnect();
  };
  const streamKey = (subject: string): string => `${prefix}:${subject}`;

  return {
    kind: 'redis',

    async openProducer(subject: string, onReplies: (frame: Uint8Array) => void, onEvent?: (event: LinkEvent) => void): Promise<ProducerLink> {
      const key = streamKey(subject);
      const replyTo = `${prefix}:reply:${randomBytes(8).toString('hex')}`;
      const commands = connect(`rxb-producer:${subject}`, 'commands', onEvent);
      // Replies are pub/sub messages: re-subscribe by hand after a reconnect, and hold sends
      // until the subscription is back. Replies published while it was down are lost: report
      // 'resubscribed', and the producer re-sends what may have been answered (resend below).
      const subscriber = connect(`rxb-replies:${subject}`, 'replies', onEvent, { autoResubscribe: false });
      let gate: { readonly closed: Promise<void>; open(): void } | undefined;
      const openGate = (): void => {
        const g = gate;
        gate = undefined;
        g?.open();
      };
      subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => onReplies(message));
      let linkClosed = false;
      /** The subscription dropped since it was last confirmed. */
      let dropped = false;
      subscriber.on('close', () => {
        if (linkClosed) return;
        dropped = true;
        if (gate !== undefined) return;
        let open!: () => void;
        const closed = new Promise<void>((resolve) => (open = resolve));
        gate = { closed, open };
      });
      subscriber.on('ready', () => void subscriber.subscribe(replyTo).then(() => {
        openGate();
        if (!dropped || linkClosed) return;
        dropped = false;
        onEvent?.({ type: 'resubscribed', connection: 'replies' });
      }, () => undefined));
      try {
        await subscriber.subscribe(replyTo);
      } catch (error) {
        quit(commands);
        quit(subscriber);
        throw error;
      }
      /**
       * Where each request went in the stream: WRITTEN while its XADD is under way, then its
       * entry id, kept on the message itself (a WeakMap entry per request cost more CPU than
       * the rest of the send). After a resubscribe, a request whose entry no worker has read
       * yet (an id after the group's last-delivered-id) need not be sent again.
       */
      const place = (m: RequestMessage, at: string): void => {
        if (Object.isExtensible(m)) (m as Placed)[ENTRY] = at;
      };
      /**
       * One entry per tick: `XADD key * q <packet>`, the tick's requests in one packet. Redis
       * then stores, hands out and acknowledges one entry instead of one per request, and a
       * worker blocked in XREADGROUP gets the whole tick at once. A very large tick goes out
       * in several entries (at most MAX_ENTRY_REQUESTS requests or about MAX_ENTRY_BYTES each),
       * pipelined in order.
       */
      const append = async (messages: readonly RequestMessage[]): Promise<void> => {
        for (const m of messages) place(m, WRITTEN);
        const chunks = entryChunks(messages);
        if (chunks.length === 1) {
          const id = (await commands.xadd(key, '*', PACKET_FIELD, toBuffer(encodeRequestPacket(messages)))) as string;
          for (const m of messages) place(m, id);
          return;
        }
        const pipeline = commands.pipeline();
        for (const chunk of chunks) pipeline.xadd(key, '*', PACKET_FIELD, toBuffer(encodeRequestPacket(chunk)));
        const ids = await execOrThrow(pipeline);
        for (let c = 0; c < chunks.length; c++) for (const m of chunks[c]) place(m, ids[c] as string);
      };
      return {
        replyTo,
        async send(messages: readonly RequestMessage[]): Promise<void> {
          if (gate !== undefined) await gate.closed;
          await append(messages);
        },
        async resend(messages: readonly RequestMessage[]): Promise<number> {
          if (gate !== undefined) await gate.closed;
          let lastDelivered: string | undefined;
          try {
            const groups = (await commands.xinfo('GROUPS', key)) as unknown[][];
            for (const row of groups) {
              const info = new Map<unknown, unknown>();
              for (let i = 0; i + 1 < row.length; i += 2) info.set(row[i], row[i + 1]);
              if (info.get('name') === group) lastDelivered = String(info.get('last-delivered-id'));
            }
          } catch {
            // no group (the stream vanished) or no right to look: send them all again
          }
          const again = messages.filter((m) => {
            if (!Object.isExtensible(m)) return true; // its place could not be kept: send it again
            const at = (m as Placed)[ENTRY];
            if (at === undefined) return false; // never written: its send is still to come
            return lastDelivered === undefined || at === WRITTEN || !entryAfter(at, lastDelivered);
          });
          if (again.length > 0) await append(again);
          return again.length;
        },
        async close(): Promise<void> {
          linkClosed = true;
          quit(commands);
          quit(subscriber);
          openGate();
        },
      };
    },

    async openWorker(subject: string, linkOptions: WorkerLinkOptions): Promise<WorkerLink> {
      const key = streamKey(subject);
      const consumer = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
      const onEvent = linkOptions.onEvent;
      const commands = connect(`rxb-worker:${subject}`, 'commands', onEvent);
      let blocking = connect(`rxb-worker-pull:${subject}`, 'pull', onEvent);
      const claimIdleMs = Math.max(1, Math.round(linkOptions.claimIdleMs));
      const reclaimEveryMs = Math.max(5, Math.min(pollMs, Math.floor(claimIdleMs / 2)));
      let nextReclaimAt = 0;
      let cursor = '0-0';
      let closed = false;

      const ensureGroup = async (): Promise<void> => {
        try {
          // From id 0: requests sent before the first worker joined are served too.
          await commands.xgroup('CREATE', key, group, '0', 'MKSTREAM');
        } catch (error) {
          if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
        }
      };
      /** Whether this user may run MULTI/EXEC (finish in one round trip). */
      let transactions: boolean;
      /** Whether this user may run the finish script (finish in one command). */
      let scripts: boolean;
      /** Whether this user may run the hand-back script (check ownership and hand back in one command). */
      let handBackScript: boolean;
      try {
        await ensureGroup();
        [transactions, scripts, handBackScript] = await Promise.all([
          mayTransact(commands), mayFinishByScript(commands, key), mayHandBackByScript(commands, key), blocking.ping(),
        ]);
      } catch (error) {
        quit(commands);
        quit(blocking);
        throw error;
      }

      const capOf = linkOptions.redeliveryCap;
      /** The link's ledger: single requests handed out of entries that each hold a producer's tick. */
      const ledger = new PackedEntries<string>(capOf);
      /**
       * Entries whose requests this link must not acknowledge: a step on the broker failed after
       * the ledger counted some of their requests finished or moved (their replies or their
       * appending may not have happened). They stay pending, and go to a worker again whole
       * after claimIdleMs once nothing of theirs is renewed: duplicates, never a loss.
       */
      const tainted = new Set<string>();
      const taint = (deliveries: readonly Delivery[], work: EntryWork<string>): void => {
        const settled = new Set([...work.acknowledge, ...work.handBack]);
        for (const d of deliveries) {
          const ref = entryOf<string>(d);
          if (!settled.has(ref)) tainted.add(ref);
        }
      };

      const toEntries = (raw: RawEntry[], reclaimed: boolean, counts?: Map<string, number>): PackedEntry<string>[] => {
        const out: PackedEntry<string>[] = [];
        for (const [rawId, fields] of raw) {
          if (fields === null) continue; // deleted meanwhile
          const ref = rawId.toString();
          out.push({ ref, deliveries: counts?.get(ref) ?? 1, reclaimed, requests: entryRequests(fields) });
        }
        return out;
      };

      /**
       * With `redeliveryCap`: reads the idle entries' delivery counts first (XPENDING IDLE, which
       * claims nothing), then claims only as many entries as one batch of them may hold, by the
       * mean size of an entry (XCLAIM, which counts the delivery; an entry another worker took
       * meanwhile is no longer idle and is skipped). The ledger applies the cap to the requests,
       * and cuts an entry the pull may not run whole.
       */
      const reclaimCapped = async (max: number, cap: (deliveries: number) => number): Promise<PackedEntry<string>[]> => {
        nextReclaimAt = Date.now() + reclaimEveryMs;
        const wanted = ledger.entriesFor(max);
        const rows = (await commands.call('XPENDING', key, group, 'IDLE', String(claimIdleMs), '-', '+', String(wanted))) as RawPendingRow[];
        const counts = new Map<string, number>();
        const size = Math.max(1, ledger.meanEntrySize);
        let limit = max;
        for (const row of rows) {
          const deliveries = Number(row[3]) + 1;
          const c = cap(deliveries);
          const held = counts.size * size;
          if (counts.size > 0 && (held >= limit || held >= c)) break;
          limit = Math.min(limit, c);
          counts.set(String(row[0]), deliveries);
        }
        if (rows.length >= wanted && counts.size === rows.length) nextReclaimAt = 0; // more may be idle: look again on the next pull
        if (counts.size === 0) return [];
        const claimed = (await commands.callBuffer('XCLAIM', key, group, consumer, String(claimIdleMs), ...counts.keys())) as (RawEntry | null)[];
        // The ledger cuts an entry this pull cannot run whole (see handOut).
        return toEntries(claimed.filter((e): e is RawEntry => e !== null), true, counts);
      };

      /** Takes over entries idle for claimIdleMs (their worker died or hung), with their delivery counts. */
      const reclaim = async (max: number): Promise<PackedEntry<string>[]> => {
        if (capOf !== undefined) return reclaimCapped(max, capOf);
        nextReclaimAt = Date.now() + reclaimEveryMs;
        const [next, entries] = (await commands.callBuffer(
          'XAUTOCLAIM', key, group, consumer, String(claimIdleMs), cursor, 'COUNT', String(ledger.entriesFor(max)),
        )) as RawAutoClaim;
        cursor = next.toString();
        if (cursor !== '0-0') nextReclaimAt = 0; // more to scan: look again on the next pull
        const live = entries.filter((e) => e[1] !== null);
        if (live.length === 0) return [];
        const pipeline = commands.pipeline();
        for (const [rawId] of live) pipeline.xpending(key, group, rawId.toString(), rawId.toString(), 1, consumer);
        const rows = (await pipeline.exec()) ?? [];
        const counts = new Map<string, number>();
        for (const [error, result] of rows) {
          const row = !error && Array.isArray(result) ? (result as RawPendingRow[])[0] : undefined;
          if (row !== undefined) counts.set(String(row[0]), Number(row[3]));
        }
        return toEntries(live, true, counts);
      };

      /**
       * Reads new entries for `room` requests (as many entries as the ledger expects to fill it),
       * and reads again without blocking while they fall short of it and each read came back
       * full (more may be waiting): a worker with a backlog starts full batches.
       */
      const read = async (room: number, blockMs: number): Promise<PackedEntry<string>[]> => {
        const out: PackedEntry<string>[] = [];
        for (let wait = blockMs, got = 0; got < room; wait = 0) {
          const count = ledger.entriesFor(room - got);
          const args: (string | number)[] = ['GROUP', group, consumer, 'COUNT', count];
          if (wait > 0) args.push('BLOCK', wait);
          args.push('STREAMS', key, '>');
          const connection = wait > 0 ? blocking : commands;
          const reply = (await connection.callBuffer('XREADGROUP', ...args)) as RawRead;
          const raw = reply === null || reply.length === 0 ? [] : reply[0][1];
          for (const entry of toEntries(raw, false)) {
            out.push(entry);
            got += entry.requests.length;
          }
          if (raw.length < count || closed) break; // all that was waiting
        }
        return out;
      };

      const withGroup = async <T>(operation: () => Promise<T>): Promise<T> => {
        try {
          return await operation();
        } catch (error) {
          // The stream or group vanished (a broker restarted without persistence, a key deleted): recreate it.
          if (!String((error as Error).message).includes('NOGROUP')) throw error;
          await ensureGroup();
          return operation();
        }
      };

      /** Replies to an empty address go nowhere: a request of a garbage entry has none (and an ACL may refuse the channel). */
      const addressed = (frames: readonly ReplyFrame[]): readonly ReplyFrame[] => (frames.some((f) => f.replyTo === '') ? frames.filter((f) => f.replyTo !== '') : frames);
      const publish = async (frames: readonly ReplyFrame[]): Promise<void> => {
        const sent = addressed(frames);
        if (sent.length === 0) return;
        const pipeline = commands.pipeline();
        for (const { replyTo, frame } of sent) pipeline.publish(replyTo, toBuffer(frame));
        await execOrThrow(pipeline);
      };
      /**
       * Makes the broker hand entries back: they look idle for long, so the next reclaim by any
       * worker takes them. Only those this consumer still owns: an entry another worker took over
       * meanwhile is that worker's (handed back, it would look idle under its feet and go to a
       * third worker while it runs). Atomic by script; checked first, then claimed, without one.
       */
      const handBack = (ids: readonly string[]): Promise<number> => claimOwned(ids, claimIdleMs);
      /**
       * Sets the idle time of the entries `ids` this consumer still owns (`XCLAIM … IDLE
       * JUSTID`, no delivery counted): `claimIdleMs` hands them back, 0 renews them. An entry
       * another worker took over is left alone, so a late holder neither hands it back nor,
       * renewing, takes it over from the worker now running it.
       */
      const claimOwned = (ids: readonly string[], idleMs: number): Promise<number> =>
        (handBackScript ? handBackByScript : handBackChecked)(commands, key, group, consumer, idleMs, ids);

      /**
       * Does on the broker what the ledger says, after publishing `frames`: appends the moved
       * requests again, then acknowledges (XACK + XDEL, never MAXLEN), in one script call (or
       * MULTI/EXEC, for a user that may not run scripts), so that a reply or an append the broker
       * refuses aborts the acknowledgement with it. A user without MULTI/EXEC either (an ACL
       * written for earlier versions) gets the steps one after another. Entries handed back
       * (others than those acknowledged) go back alongside, by {@link handBack}.
       */
      const carryOut = async (frames: readonly ReplyFrame[], work: EntryWork<string>): Promise<void> => {
        const packets = againPackets(work.again);
        const sent = addressed(frames);
        const acknowledge = tainted.size === 0 ? work.acknowledge : work.acknowledge.filter((id) => !tainted.delete(id));
        const back = work.handBack;
        if (scripts) {
          await Promise.all([
            sent.length + packets.length + acknowledge.length > 0 ? finishByScript(commands, key, group, sent, packets, acknowledge) : undefined,
            back.length > 0 ? handBack(back) : undefined,
          ]);
          return;
        }
        if (transactions) {
          const finish = async (): Promise<void> => {
            if (sent.length + packets.length + acknowledge.length === 0) return;
            const transaction = commands.multi();
            for (const { replyTo, frame } of sent) transaction.publish(replyTo, toBuffer(frame));
            for (const packet of packets) transaction.xadd(key, '*', PACKET_FIELD, toBuffer(packet));
            if (acknowledge.length > 0) transaction.xack(key, group, ...acknowledge).xdel(key, ...acknowledge);
            await execOrThrow(transaction);
          };
          await Promise.all([finish(), back.length > 0 ? handBack(back) : undefined]);
          return;
        }
        await publish(sent);
        if (packets.length > 0) {
          const pipeline = commands.pipeline();
          for (const packet of packets) pipeline.xadd(key, '*', PACKET_FIELD, toBuffer(packet));
          await execOrThrow(pipeline);
        }
        await Promise.all([
          acknowledge.length > 0 ? execOrThrow(commands.pipeline().xack(key, group, ...acknowledge).xdel(key, ...acknowledge)) : undefined,
          back.length > 0 ? handBack(back) : undefined,
        ]);
      };

      /**
       * Hands out up to `max` requests (held ones first, then those of `entries`). A redelivered
       * entry the pull cannot run whole is cut by the ledger: its parts appended and it
       * acknowledged in one step (carryOut) before anything is handed out.
       */
      const handOut = async (max: number, entries: readonly PackedEntry<string>[]): Promise<Delivery[]> => {
        const { deliveries, work } = ledger.take(max, entries);
        if (work.again.length > 0 || work.acknowledge.length > 0) {
          try {
            await carryOut([], work);
          } catch (error) {
            // Nothing of these entries may be acknowledged now: they go to a worker again whole.
            for (const entry of entries) tainted.add(entry.ref);
            throw error;
          }
        }
        return deliveries;
      };
      /** Settles `deliveries` in the ledger and does what that takes on the broker. */
      const settle = async (frames: readonly ReplyFrame[], deliveries: readonly Delivery[], how: 'done' | 'released'): Promise<void> => {
        const work = ledger.settle(deliveries, how);
        try {
          await carryOut(frames, work);
        } catch (error) {
          taint(deliveries, work);
          throw error;
        }
      };

      return {
        async pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]> {
          if (ledger.heldCount >= max) return handOut(max, []);
          // Redelivered requests only with nothing held: a pull may hold fewer of them than the held first deliveries.
          if (ledger.heldCount === 0 && Date.now() >= nextReclaimAt) {
            const reclaimed = await withGroup(() => reclaim(max));
            if (reclaimed.length > 0) {
              const out = await handOut(max, reclaimed);
              if (out.length > 0) return out;
            }
          }
          const room = max - ledger.heldCount;
          if (ledger.heldCount > 0 || !wait || signal?.aborted) return handOut(max, await withGroup(() => read(room, 0)));
          const blockMs = Math.max(1, Math.min(pollMs, nextReclaimAt - Date.now()));
          // Aborting a blocked XREADGROUP means dropping its connection; a new one serves the next pull.
          const onAbort = (): void => {
            const dropped = blocking;
            blocking = connect(`rxb-worker-pull:${subject}`, 'pull', onEvent);
            if (closed) quit(blocking);
            quit(dropped);
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          let entries: PackedEntry<string>[];
          try {
            entries = await withGroup(() => read(room, blockMs));
          } catch (error) {
            if (signal?.aborted) return [];
            throw error;
          } finally {
            signal?.removeEventListener('abort', onAbort);
          }
          return handOut(max, entries);
        },
        async pullFresh(max: number, signal?: AbortSignal): Promise<Delivery[]> {
          // '>' hands out only entries never delivered to this group: no reclaim. (An entry a
          // worker appended again holds requests delivered before, with their counts.)
          if (signal?.aborted) return [];
          if (ledger.heldCount >= max) return handOut(max, []);
          return handOut(max, await withGroup(() => read(max - ledger.heldCount, 0)));
        },
        async finish(frames: readonly ReplyFrame[], deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return publish(frames);
          // One command: PUBLISH every frame, then XACK + XDEL the entries all of whose requests
          // are done, in a script that stops at a refused reply before the acknowledgement.
          await settle(frames, deliveries, 'done');
        },
        reply: publish,
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return;
          await settle([], deliveries, 'done');
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          // Every entry they came from, and those of the requests held here, while still ours:
          // resets the idle time without counting a delivery (a plain XCLAIM would take an entry
          // over from the worker that reclaimed it while this one stalled).
          const ids = ledger.entriesOf(deliveries);
          if (ids.length === 0) return;
          await claimOwned(ids, 0);
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return;
          // An entry handed back whole goes back (looking idle for long); requests handed back alone are appended again.
          await settle([], deliveries, 'released');
        },
        async close(): Promise<void> {
          closed = true;
          quit(blocking);
          try {
            await withDeadline(async () => {
              // Requests read beyond a pull's room and never handed out go back to the group.
              const held = ledger.drain();
              if (held.length > 0) await settle([], held, 'released');
              // Leave the group only with nothing pending: DELCONSUMER would drop pending entries.
              const mine = (await commands.xpending(key, group, '-', '+', 1, consumer)) as unknown[];
              if (mine.length === 0) await commands.xgroup('DELCONSUMER', key, group, consumer);
            }, 1000);
          } catch {
            // the broker is away: held entries are reclaimed after claimIdleMs; a stale consumer name is harmless
          }
          quit(commands);
        },
      };
    },

    async backlog(subject: string): Promise<Backlog> {
      const connection = connect(`rxb-backlog:${subject}`, 'backlog');
      try {
        const key = streamKey(subject);
        // Entries up to the last one pending are delivered (those acknowledged are deleted); after it, waiting.
        let lastPending: string | undefined;
        try {
          const summary = (await connection.xpending(key, group)) as [number, string | null, string | null, unknown];
          if (Number(summary[0]) > 0 && summary[2] !== null) lastPending = String(summary[2]);
        } catch (error) {
          if (!String((error as Error).message).includes('NOGROUP')) throw error;
        }
        // Requests, not entries: an entry holds a producer's tick. Counted from each packet's header, a page at a time.
        let waiting = 0;
        let pending = 0;
        for (let from = '-'; ;) {
          const page = (await connection.callBuffer('XRANGE', key, from, '+', 'COUNT', String(BACKLOG_PAGE))) as RawEntry[];
          for (const [rawId, fields] of page) {
            const n = entryRequestCount(fields ?? []);
            if (lastPending !== undefined && !entryAfter(rawId.toString(), lastPending)) pending += n;
            else waiting += n;
          }
          if (page.length < BACKLOG_PAGE) break;
          from = `(${page[page.length - 1][0].toString()}`;
        }
        return { waiting, pending };
      } finally {
        quit(connection);
      }
    },
  };
}

/** How many entries `backlog` reads at a time. */
const BACKLOG_PAGE = 1000;

/** `again` (requests moved out of entries, a list per new entry) as request packets, one per stream entry, each request with its earlier deliveries. */
function againPackets(again: readonly (readonly PackedRequest[])[]): Uint8Array[] {
  return again.flatMap((part) => entryChunks(part).map((chunk) => encodeRequestPacket(chunk, (i) => chunk[i].earlier)));
}

/** Runs `operation`, giving up after `ms` (the broker may be away, and commands wait for it). */
async function withDeadline(operation: () => Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([operation(), new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether this connection's user may run MULTI/EXEC (an ACL written for earlier versions may
 * lack `+multi +exec`), asked once with a transaction holding a PING: a refused MULTI would
 * run the commands meant for it one by one, so it is never tried with real ones.
 */
async function mayTransact(connection: Redis): Promise<boolean> {
  try {
    await execOrThrow(connection.multi().ping());
    return true;
  } catch (error) {
    // EXECABORT … NOPERM …'exec' (neither, or no EXEC), or EXEC without MULTI (no MULTI).
    if (/NOPERM.*'(multi|exec)'|EXEC without MULTI/i.test(String((error as Error)?.message))) return false;
    throw error;
  }
}

/** Runs a pipeline; resolves with its results, or rejects with its first error. */
async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  for (const [error] of results) if (error) throw error;
  return results.map((r) => r[1]);
}

/** A request whose XADD is under way (no entry id yet). */
const WRITTEN = 'written';
/** Where the producer link keeps a request's stream entry id (or WRITTEN) on the message. */
const ENTRY = Symbol('rx-batcher.redis.entry');
type Placed = RequestMessage & { [ENTRY]?: string };

/** Whether stream entry id `a` ('ms-seq') comes after `b`. */
function entryAfter(a: string, b: string): boolean {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  if (am.length !== bm.length) return am.length > bm.length;
  if (am !== bm) return am > bm;
  return Number(as) > Number(bs);
}

/**
 * The most requests a producer puts in one stream entry; a bigger tick goes out in several.
 * An entry goes to one worker whole (what it cannot run yet it holds), so this is also how
 * finely a burst spreads over workers: about a batch.
 */
const MAX_ENTRY_REQUESTS = 64;
/** About the most bytes of requests a producer puts in one stream entry (one request may be bigger: it goes alone). */
const MAX_ENTRY_BYTES = 4 << 20;

/** `messages` cut, in order, into the requests of one stream entry each. */
function entryChunks<M extends RequestMessage>(messages: readonly M[]): (readonly M[])[] {
  if (messages.length <= MAX_ENTRY_REQUESTS) {
    let bytes = 0;
    for (const m of messages) bytes += requestBytes(m);
    if (bytes <= MAX_ENTRY_BYTES) return [messages];
  }
  const chunks: M[][] = [];
  let chunk: M[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = requestBytes(m);
    if (chunk.length > 0 && (chunk.length >= MAX_ENTRY_REQUESTS || bytes + size > MAX_ENTRY_BYTES)) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** Roughly what a request takes in a packet (its variable parts; ids and addresses are short). */
function requestBytes(m: RequestMessage): number {
  return 64 + m.id.length + m.replyTo.length + m.body.byteLength + (m.context === undefined ? 0 : m.context.byteLength);
}
