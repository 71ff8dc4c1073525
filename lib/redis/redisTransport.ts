import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import { reconnectDelays, type LinkEvent } from '../remote/brokerEvents.js';
import type { Backlog, BatchTransport, Delivery, ProducerLink, ReplyFrame, RequestMessage, WorkerLink, WorkerLinkOptions } from '../remote/transport.js';
import { appendByScript, mayAppendByScript } from './appendScript.js';
import { entryFields, toBuffer } from './entryFields.js';
import { finishByScript, mayFinishByScript } from './finishScript.js';

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
 * requests; a producer appends each tick's requests with one call of a Lua script (or, for a
 * user that may not run scripts, in MULTI/EXEC); workers share it through a consumer group
 * (`XREADGROUP`), reclaim requests of dead workers after `claimIdleMs` (`XPENDING … IDLE` then
 * `XCLAIM`, no more than one batch of them may hold, under `redeliveryCap`; `XAUTOCLAIM`
 * without), renew their claims with `XCLAIM … JUSTID`, and acknowledge with `XACK` + `XDEL`
 * after replying over pub/sub (one script call, or MULTI/EXEC for a user that may not run
 * scripts). The stream is never trimmed with `MAXLEN` (that would drop requests nobody has run).
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
      let transactions: boolean;
      /** Whether this user may run the append script (one EVALSHA per tick instead of an XADD per request). */
      let scripts: boolean;
      try {
        [transactions, scripts] = await Promise.all([mayTransact(commands), mayAppendByScript(commands, key), subscriber.subscribe(replyTo)]);
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
      const append = async (messages: readonly RequestMessage[]): Promise<void> => {
        for (const m of messages) place(m, WRITTEN);
        if (messages.length === 1) {
          place(messages[0], await commands.xadd(key, '*', ...entryFields(messages[0])) as string);
          return;
        }
        // One round trip for the whole tick's requests, handed to a worker blocked in XREADGROUP
        // all at once (Redis serves it after each command: a plain pipeline hands it the first
        // request alone, a batch of one, then one of the rest). Best, one script call that
        // XADDs them all: ioredis costs far less client CPU per argument than per command.
        if (scripts) {
          const ids = await appendByScript(commands, key, messages);
          for (let i = 0; i < messages.length; i++) place(messages[i], ids[i]);
          return;
        }
        // A user without the right to run scripts: MULTI/EXEC. (Without MULTI/EXEC either, an
        // ACL written for earlier versions: a plain pipeline.)
        const pipeline = transactions ? commands.multi() : commands.pipeline();
        for (const m of messages) pipeline.xadd(key, '*', ...entryFields(m));
        const ids = await execOrThrow(pipeline);
        for (let i = 0; i < messages.length; i++) place(messages[i], ids[i] as string);
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
      try {
        await ensureGroup();
        [transactions, scripts] = await Promise.all([mayTransact(commands), mayFinishByScript(commands, key), blocking.ping()]);
      } catch (error) {
        quit(commands);
        quit(blocking);
        throw error;
      }

      const toDeliveries = (entries: RawEntry[], reclaimed: boolean, counts?: Map<string, number>): Delivery[] => {
        const out: Delivery[] = [];
        for (const [rawId, fields] of entries) {
          if (fields === null) continue; // deleted meanwhile
          const handle = rawId.toString();
          let id = '';
          let replyTo = '';
          let body: Uint8Array = EMPTY;
          let deadline: number | undefined;
          let context: Uint8Array | undefined;
          let priority: number | undefined;
          let mac: Uint8Array | undefined;
          for (let i = 0; i + 1 < fields.length; i += 2) {
            // Field names are one letter: compare the byte, not a decoded string.
            const name = fields[i];
            const f = name.length === 1 ? name[0] : 0;
            if (f === FIELD_I) id = fields[i + 1].toString();
            else if (f === FIELD_R) replyTo = fields[i + 1].toString();
            else if (f === FIELD_B) body = fields[i + 1];
            else if (f === FIELD_D) deadline = Number(fields[i + 1].toString());
            else if (f === FIELD_C) context = fields[i + 1];
            else if (f === FIELD_P) priority = Number(fields[i + 1].toString());
            else if (f === FIELD_M) mac = fields[i + 1];
          }
          const delivery: Mutable<Delivery> = { id, replyTo, body, deliveries: counts?.get(handle) ?? 1, reclaimed, handle };
          if (deadline !== undefined) delivery.deadline = deadline;
          if (context !== undefined) delivery.context = context;
          if (priority !== undefined) delivery.priority = priority;
          if (mac !== undefined) delivery.mac = mac;
          out.push(delivery);
        }
        return out;
      };

      const capOf = linkOptions.redeliveryCap;
      /**
       * With `redeliveryCap`: reads the idle entries' delivery counts first (XPENDING IDLE, which
       * claims nothing), then claims only as many as one batch of them may hold (XCLAIM, which
       * counts the delivery; an entry another worker took meanwhile is no longer idle and is skipped).
       */
      const reclaimCapped = async (max: number, cap: (deliveries: number) => number): Promise<Delivery[]> => {
        nextReclaimAt = Date.now() + reclaimEveryMs;
        const rows = (await commands.call('XPENDING', key, group, 'IDLE', String(claimIdleMs), '-', '+', String(max))) as RawPendingRow[];
        const counts = new Map<string, number>();
        let limit = max;
        for (const row of rows) {
          const deliveries = Number(row[3]) + 1;
          const c = cap(deliveries);
          if (counts.size >= limit || counts.size >= c) break;
          limit = Math.min(limit, c);
          counts.set(String(row[0]), deliveries);
        }
        if (rows.length >= max && counts.size === rows.length) nextReclaimAt = 0; // more may be idle: look again on the next pull
        if (counts.size === 0) return [];
        const entries = (await commands.callBuffer('XCLAIM', key, group, consumer, String(claimIdleMs), ...counts.keys())) as (RawEntry | null)[];
        return toDeliveries(entries.filter((e): e is RawEntry => e !== null), true, counts);
      };

      /** Takes over requests idle for claimIdleMs (their worker died or hung), with their delivery counts. */
      const reclaim = async (max: number): Promise<Delivery[]> => {
        if (capOf !== undefined) return reclaimCapped(max, capOf);
        nextReclaimAt = Date.now() + reclaimEveryMs;
        const [next, entries] = (await commands.callBuffer(
          'XAUTOCLAIM', key, group, consumer, String(claimIdleMs), cursor, 'COUNT', String(max),
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
        return toDeliveries(live, true, counts);
      };

      const read = async (max: number, blockMs: number): Promise<Delivery[]> => {
        const args: (string | number)[] = ['GROUP', group, consumer, 'COUNT', max];
        if (blockMs > 0) args.push('BLOCK', blockMs);
        args.push('STREAMS', key, '>');
        const connection = blockMs > 0 ? blocking : commands;
        const reply = (await connection.callBuffer('XREADGROUP', ...args)) as RawRead;
        return reply === null || reply.length === 0 ? [] : toDeliveries(reply[0][1], false);
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

      // XACK then XDEL: the entry leaves the group's pending list and the stream. Never MAXLEN.
      const acknowledge = async (ids: string[]): Promise<void> => void (await execOrThrow(commands.pipeline().xack(key, group, ...ids).xdel(key, ...ids)));
      const publish = async (frames: readonly ReplyFrame[]): Promise<void> => {
        if (frames.length === 0) return;
        const pipeline = commands.pipeline();
        for (const { replyTo, frame } of frames) pipeline.publish(replyTo, toBuffer(frame));
        await execOrThrow(pipeline);
      };

      return {
        async pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]> {
          if (Date.now() >= nextReclaimAt) {
            const reclaimed = await withGroup(() => reclaim(max));
            if (reclaimed.length > 0) return reclaimed;
          }
          if (!wait || signal?.aborted) return withGroup(() => read(max, 0));
          const blockMs = Math.max(1, Math.min(pollMs, nextReclaimAt - Date.now()));
          // Aborting a blocked XREADGROUP means dropping its connection; a new one serves the next pull.
          const onAbort = (): void => {
            const dropped = blocking;
            blocking = connect(`rxb-worker-pull:${subject}`, 'pull', onEvent);
            if (closed) quit(blocking);
            quit(dropped);
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          try {
            return await withGroup(() => read(max, blockMs));
          } catch (error) {
            if (signal?.aborted) return [];
            throw error;
          } finally {
            signal?.removeEventListener('abort', onAbort);
          }
        },
        async pullFresh(max: number, signal?: AbortSignal): Promise<Delivery[]> {
          // '>' hands out only entries never delivered to this group: no redelivery, no reclaim.
          if (signal?.aborted) return [];
          return withGroup(() => read(max, 0));
        },
        async finish(frames: readonly ReplyFrame[], deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return publish(frames);
          const ids = deliveries.map((d) => d.handle as string);
          // One command: PUBLISH every frame, then XACK + XDEL, in a script that stops at a
          // refused reply before the acknowledgement. ioredis costs CPU per command.
          if (scripts) return finishByScript(commands, key, group, frames, ids);
          if (transactions) {
            // One round trip: PUBLISH every frame, then XACK + XDEL. MULTI/EXEC, so that a reply the
            // broker refuses (an ACL, say) aborts the acknowledgement with it: never acknowledged unanswered.
            const transaction = commands.multi();
            for (const { replyTo, frame } of frames) transaction.publish(replyTo, toBuffer(frame));
            transaction.xack(key, group, ...ids).xdel(key, ...ids);
            await execOrThrow(transaction);
            return;
          }
          // A user without MULTI/EXEC (an ACL written for earlier versions): two round trips.
          await publish(frames);
          await acknowledge(ids);
        },
        reply: publish,
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return;
          await acknowledge(deliveries.map((d) => d.handle as string));
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return;
          const ids = deliveries.map((d) => d.handle as string);
          // Resets the idle time without counting a delivery.
          await commands.xclaim(key, group, consumer, 0, ...ids, 'JUSTID');
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          if (deliveries.length === 0) return;
          // Make them look idle for long, so the next XAUTOCLAIM by any worker takes them.
          const ids = deliveries.map((d) => d.handle as string);
          await commands.xclaim(key, group, consumer, 0, ...ids, 'IDLE', claimIdleMs, 'JUSTID');
        },
        async close(): Promise<void> {
          closed = true;
          quit(blocking);
          try {
            // Leave the group only with nothing pending: DELCONSUMER would drop pending entries.
            await withDeadline(async () => {
              const mine = (await commands.xpending(key, group, '-', '+', 1, consumer)) as unknown[];
              if (mine.length === 0) await commands.xgroup('DELCONSUMER', key, group, consumer);
            }, 1000);
          } catch {
            // the broker is away: a stale consumer name is harmless
          }
          quit(commands);
        },
      };
    },

    async backlog(subject: string): Promise<Backlog> {
      const connection = connect(`rxb-backlog:${subject}`, 'backlog');
      try {
        const key = streamKey(subject);
        const length = await connection.xlen(key);
        let pending = 0;
        try {
          const summary = (await connection.xpending(key, group)) as [number, ...unknown[]];
          pending = Number(summary[0]);
        } catch (error) {
          if (!String((error as Error).message).includes('NOGROUP')) throw error;
        }
        return { waiting: length - pending, pending };
      } finally {
        quit(connection);
      }
    },
  };
}

const EMPTY = new Uint8Array(0);
const [FIELD_I, FIELD_R, FIELD_B, FIELD_D, FIELD_C, FIELD_P, FIELD_M] = Array.from('irbdcpm', (c) => c.charCodeAt(0));
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

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
