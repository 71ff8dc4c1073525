import { randomBytes } from 'node:crypto';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
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

interface Entry {
  readonly message: RequestMessage;
  deliveries: number;
  /** When it was last delivered or touched; -Infinity when released. */
  touchedAt: number;
}

interface Subject {
  readonly waiting: Entry[];
  readonly pending: Set<Entry>;
  claimIdleMs: number;
  readonly wakers: Set<() => void>;
}

/**
 * A broker in this process's memory, for unit tests of workers and producers without Redis
 * or NATS. It keeps the semantics that matter: one shared stream per subject, at-least-once
 * delivery, reclaim of requests idle for `claimIdleMs`, delivery counts, touch and release.
 * Its clock and timers are the `scheduler`'s (default `asyncScheduler`), so a virtual-time
 * scheduler, or jest fake timers, drive claims and long polls. Messages do not leave the process.
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

  return {
    kind: 'memory',

    async openProducer(subjectName: string, onReplies: (frame: Uint8Array) => void): Promise<ProducerLink> {
      const s = subjectOf(subjectName);
      const replyTo = `memory.reply.${randomBytes(6).toString('hex')}`;
      producers.set(replyTo, onReplies);
      return {
        replyTo,
        async send(messages: readonly RequestMessage[]): Promise<void> {
          for (const message of messages) s.waiting.push({ message, deliveries: 0, touchedAt: 0 });
          wake(s);
        },
        async close(): Promise<void> {
          producers.delete(replyTo);
        },
      };
    },

    async openWorker(subjectName: string, options: WorkerLinkOptions): Promise<WorkerLink> {
      const s = subjectOf(subjectName);
      s.claimIdleMs = options.claimIdleMs;
      let closed = false;

      const capOf = options.redeliveryCap ?? (() => Infinity);
      const take = (max: number): Delivery[] => {
        const at = now();
        const out: Delivery[] = [];
        for (const entry of s.pending) {
          if (out.length >= max) break;
          if (at - entry.touchedAt >= s.claimIdleMs) {
            // No more requests than one batch of the most delivered may hold (redeliveryCap).
            const cap = capOf(entry.deliveries + 1);
            if (out.length >= cap) break;
            max = Math.min(max, cap);
            entry.deliveries++;
            entry.touchedAt = at;
            out.push({ ...entry.message, deliveries: entry.deliveries, reclaimed: true, handle: entry });
          }
        }
        takeFresh(max, at, out);
        return out;
      };
      /** Requests never delivered, oldest first. */
      const takeFresh = (max: number, at: number, out: Delivery[]): Delivery[] => {
        while (out.length < max && s.waiting.length > 0) {
          const entry = s.waiting.shift()!;
          entry.deliveries++;
          entry.touchedAt = at;
          s.pending.add(entry);
          out.push({ ...entry.message, deliveries: entry.deliveries, reclaimed: false, handle: entry });
        }
        return out;
      };

      /** Resolves on a new request, when the next pending one may be reclaimed, on abort or after a long poll. */
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

      return {
        async pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]> {
          if (closed) throw new Error('memoryTransport: pull() after close()');
          const got = take(max);
          if (got.length > 0 || !wait || signal?.aborted) return got;
          await nextChance(signal);
          return signal?.aborted ? [] : take(max);
        },
        async pullFresh(max: number, signal?: AbortSignal): Promise<Delivery[]> {
          if (closed) throw new Error('memoryTransport: pullFresh() after close()');
          return signal?.aborted ? [] : takeFresh(max, now(), []);
        },
        async reply(frames: readonly ReplyFrame[]): Promise<void> {
          for (const { replyTo, frame } of frames) {
            const deliver = producers.get(replyTo);
            if (deliver !== undefined) void Promise.resolve(frame).then(deliver);
          }
        },
        async ack(deliveries: readonly Delivery[]): Promise<void> {
          for (const d of deliveries) s.pending.delete(d.handle as Entry);
        },
        async touch(deliveries: readonly Delivery[]): Promise<void> {
          const at = now();
          for (const d of deliveries) (d.handle as Entry).touchedAt = at;
        },
        async release(deliveries: readonly Delivery[]): Promise<void> {
          for (const d of deliveries) (d.handle as Entry).touchedAt = -Infinity;
          wake(s);
        },
        async close(): Promise<void> {
          closed = true;
        },
      };
    },

    async backlog(subjectName: string): Promise<Backlog> {
      const s = subjectOf(subjectName);
      return { waiting: s.waiting.length, pending: s.pending.size };
    },
  };
}
