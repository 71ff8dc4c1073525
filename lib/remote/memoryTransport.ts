import { randomBytes } from 'node:crypto';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { PackedEntries, entryOf, type EntryWork, type PackedEntry } from './packedEntries.js';
import { decodeRequestPacket, encodeRequestPacket, type PackedRequest } from './requestPacket.js';
import type { Backlog, BatchTransport, Delivery, ProducerLink, ReplyFrame, RequestMessage, WorkerLink, WorkerLinkOptions } from './transport.js';

/**
 * Options of {@link memoryTransport}.
 *
 * @example
 * ```ts
 * const transport = memoryTransport({ scheduler: testScheduler });
 * ```
 */
export interface MemoryTransportOptions {
  /** The clock and timers of claims and long polls. @default asyncScheduler */
  readonly scheduler?: SchedulerLike;
}

/** How long a waiting `pull` waits before returning empty, like a broker's long poll. */
const LONG_POLL_MS = 1000;

/** One stream entry: the packet of one producer `send` (or of requests a worker appended again). */
interface Entry {
  /** The encoded packet, as a broker would store it. */
  readonly packet: Uint8Array;
  /** How many requests it holds (for `backlog()`, which counts requests). */
  readonly count: number;
  /** How many times it was delivered (1 the first time), as the broker counts. */
  deliveries: number;
  /** When it was last delivered or touched; -Infinity when handed back. */
  touchedAt: number;
  /** In the stream, never delivered; delivered and not acknowledged; acknowledged (deleted). */
  state: 'waiting' | 'pending' | 'gone';
}

/**
 * One delivery of an entry to one worker link: what the link's ledger names the entry by. The
 * link acts on the entry (acknowledges, hands back, moves requests out of it, renews it) only
 * while that delivery is the entry's latest: once another worker took it over (or it was
 * acknowledged), the entry and every request in it are the new holder's to finish.
 */
interface Claim {
  readonly entry: Entry;
  /** The entry's delivery count when this link read it. */
  readonly deliveries: number;
}

interface Subject {
  /** Entries never delivered, oldest first. */
  readonly waiting: Entry[];
  /** Entries delivered and not acknowledged, in the order they were first delivered. */
  readonly pending: Set<Entry>;
  claimIdleMs: number;
  readonly wakers: Set<() => void>;
}

/**
 * A broker in this process's memory, for unit tests of workers and producers without Redis
 * or NATS. It keeps the semantics that matter, as the broker transports have them: one shared
 * stream per subject; one entry per producer `send` (a request packet, see
 * `encodeRequestPacket`), so delivery, delivery counts, claims, touches, hand-backs and
 * reclaims of entries idle for `claimIdleMs` are per entry; at-least-once delivery. Its worker
 * links hand out single requests through the same ledger as the broker transports'
 * (`PackedEntries`: what a pull leaves of an entry on its first delivery is held for the next
 * pull, a redelivered entry it cannot hand out whole is cut into new entries, and an entry is
 * acknowledged when every request of it is finished or moved).
 * `backlog()` counts requests. Its clock and timers are the `scheduler`'s (default
 * `asyncScheduler`), so a virtual-time scheduler, or jest fake timers, drive claims and long
 * polls. Messages do not leave the process.
 *
 * @example
 * ```ts
 * const transport = memoryTransport();
 * const worker = await serveBatches(transport, 'double', (xs: number[]) => xs.map((x) => 2 * x), { maxBatchSize: 8 });
 * const doubler = remoteBatcher<number, number>(transport, 'double');
 * await doubler.run(21); // 42
 * ```
 */
export function memoryTransport(options: MemoryTransportOptions = {}): BatchTransport {
  const scheduler = options.scheduler ?? asyncScheduler;
  const now = (): number => scheduler.now();
  const subjects = new Map<string, Subject>();
  const producers = new Map<string, (frame: Uint8Array) => void>();

  const subjectOf = (name: string): Subject => {
    let s = subjects.get(name);
    if (s === undefined) {
      s = { waiting: [], pending: new Set(), claimIdleMs: Infinity, wakers: new Set() };
      subjects.set(name, s);
    }
    return s;
  };
  const wake = (s: Subject): void => {
    for (const w of [...s.wakers]) w();
  };
  /** Appends one entry holding `messages` (each with its earlier deliveries), like an XADD or a publish. */
  const append = (s: Subject, messages: readonly RequestMessage[], earlier?: (index: number) => number): void => {
    if (messages.length === 0) return;
    s.waiting.push({ packet: encodeRequestPacket(messages, earlier), count: messages.length, deliveries: 0, touchedAt: 0, state: 'waiting' });
    wake(s);
  };

  return {
    kind: 'memory',

    async openProducer(subjectName: string, onReplies: (frame: Uint8Array) => void): Promise<ProducerLink> {
      const s = subjectOf(subjectName);
      const replyTo = `memory.reply.${randomBytes(6).toString('hex')}`;
      producers.set(replyTo, onReplies);
      return {
        replyTo,
        async send(messages: readonly RequestMessage[]): Promise<void> {
          append(s, messages);
        },
        async close(): Promise<void> {
          producers.delete(replyTo);
        },
      };
    },

    async openWorker(subjectName: string, options: WorkerLinkOptions): Promise<WorkerLink> {
      const s = subjectOf(subjectName);
      s.claimIdleMs = options.claimIdleMs;
      const capOf = options.redeliveryCap ?? (() => Infinity);
      const entries = new PackedEntries<Claim>(options.redeliveryCap);
      let closed = false;

      /** Whether this link still holds the entry by `claim` (no one took it over, nor acknowledged it). */
      const holds = (claim: Claim): boolean => claim.entry.state === 'pending' && claim.entry.deliveries === claim.deliveries;
      /**
       * Does on the broker what the ledger says, in its order: append again, then acknowledge and
       * hand back. Work read from entries the link no longer holds is the new holder's: skipped.
       */
      const carryOut = (work: EntryWork<Claim>): void => {
        for (const part of work.again) append(s, part, (i) => part[i].earlier);
        for (const claim of work.acknowledge) {
          if (!holds(claim)) continue;
          claim.entry.state = 'gone';
          s.pending.delete(claim.entry);
        }
        for (const claim of work.handBack) if (holds(claim)) claim.entry.touchedAt = -Infinity;
        if (work.handBack.length > 0) wake(s);
      };
      /** Settles `deliveries` entry by entry, so that what concerns an entry this link no longer holds is left alone. */
      const settle = (deliveries: readonly Delivery[], how: 'done' | 'released'): void => {
        const byClaim = new Map<Claim, Delivery[]>();
        for (const d of deliveries) {
          const claim = entryOf<Claim>(d);
          const list = byClaim.get(claim);
          if (list === undefined) byClaim.set(claim, [d]);
          else list.push(d);
        }
        for (const [claim, list] of byClaim) {
          const work = entries.settle(list, how);
          if (holds(claim)) carryOut(work);
        }
      };
      /** Delivers `entry` (its next delivery) to this link, as the ledger reads it. */
      const deliver = (entry: Entry, at: number, reclaimed: boolean): PackedEntry<Claim> => {
        entry.deliveries++;
        entry.touchedAt = at;
        // Only this module writes entries, so every one decodes; were one not to, it would hold
        // no request and the ledger would acknowledge it (drop it) at once.
        const requests: readonly PackedRequest[] = decodeRequestPacket(entry.packet) ?? [];
        return { ref: { entry, deliveries: entry.deliveries }, deliveries: entry.deliveries, reclaimed, requests };
      };
      /**
       * Reads entries for a pull of up to `max` requests: entries idle for `claimIdleMs` first
       * (taken over; unless `fresh`), then new ones, oldest first. It reads no more than the pull
       * can hand out: it stops once the held requests and those read fill `max`, or reach the
       * smallest `redeliveryCap` among them (the ledger would hold the rest, or cut an entry it cannot hand out whole).
       */
      const read = (max: number, fresh: boolean): PackedEntry<Claim>[] => {
        const at = now();
        const out: PackedEntry<Claim>[] = [];
        let count = entries.heldCount;
        let cap = Infinity;
        const more = (): boolean => count < max && count < cap;
        const add = (entry: PackedEntry<Claim>): void => {
          out.push(entry);
          count += entry.requests.length;
          for (const r of entry.requests) cap = Math.min(cap, capOf(r.earlier + entry.deliveries));
        };
        if (!fresh) {
          for (const entry of s.pending) {
            if (!more()) break;
            if (at - entry.touchedAt >= s.claimIdleMs) add(deliver(entry, at, true));
          }
        }
        while (more() && s.waiting.length > 0) {
          const entry = s.waiting.shift()!;
          entry.state = 'pending';
          s.pending.add(entry);
          add(deliver(entry, at, false));
        }
        return out;
      };
      /** Takes what a pull hands out; reads again when it only cut entries (their parts, appended, may be waiting to be read). */
      const take = (max: number, fresh: boolean): Delivery[] => {
        for (;;) {
          const { deliveries, work } = entries.take(max, read(max, fresh));
          carryOut(work);
          // Each cut acknowledges an entry into parts a pull hands out whole: this ends.
          if (deliveries.length > 0 || work.again.length === 0) return deliveries;
        }
      };

      /** Resolves on a new entry, when the next pending one may be reclaimed, on abort or after a long poll. */
      const nextChance = (signal?: AbortSignal): Promise<void> =>
        new Promise((resolve) => {
          let soonest = LONG_POLL_MS;
          for (const entry of s.pending) soonest = Math.min(soonest, Math.max(0, entry.touchedAt + s.claimIdleMs - now()));
          const done = (): void => {
            timer.unsubscribe();
            s.wakers.delete(done);
            signal?.removeEventListener('abort', done);
            resolve();
          };
          const timer = scheduler.schedule(done, soonest);
          s.wakers.add(done);
          signal?.addEventListener('abort', done);
        });

      const reply = (frames: readonly ReplyFrame[]): void => {
        for (const { replyTo, frame } of frames) {
          const deliverTo = producers.get(replyTo);
          if (deliverTo !== undefined) void Promise.resolve(frame).then(deliverTo);
        }
      };

      return {
        async pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]> {
          if (closed) throw new Error('memoryTransport: pull() after close()');
          const got = take(max, false);
          if (got.length > 0 || !wait || signal?.aborted) return got;
          await nextChance(signal);
          return signal?.aborted ? [] : take(max, false);
        },
        async pullFresh(max: number, signal?: AbortSignal): Promise<Delivery[]> {
          if (closed) throw new Error('memoryTransport: pullFresh() after close()');
          return signal?.aborted ? [] : take(max, true);
        },
        async reply(frames: readonly ReplyFrame[]): Promise<void> {
          reply(frames);
        },
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          settle(deliveries, 'done');
        },
        async finish(frames: readonly ReplyFrame[], deliveries: readonly Delivery[]): Promise<void> {
          reply(frames);
          settle(deliveries, 'done');
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          const at = now();
          for (const claim of entries.entriesOf(deliveries)) if (holds(claim)) claim.entry.touchedAt = at;
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          settle(deliveries, 'released');
        },
        async close(): Promise<void> {
          if (closed) return;
          closed = true;
          // What the last pulls read beyond their room goes back to the group.
          settle(entries.drain(), 'released');
        },
      };
    },

    async backlog(subjectName: string): Promise<Backlog> {
      const s = subjectOf(subjectName);
      let waiting = 0;
      let pending = 0;
      for (const entry of s.waiting) waiting += entry.count;
      for (const entry of s.pending) pending += entry.count;
      return { waiting, pending };
    },
  };
}
