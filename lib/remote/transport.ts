import type { LinkEvent } from './brokerEvents.js';

/**
 * The contract between the shared batching logic ({@link remoteBatcher}, {@link serveBatches})
 * and a broker. A transport only moves bytes: ids, deduplication, deadlines, errors, claim
 * renewal and batching all live in the shared logic, so every transport behaves the same.
 *
 * Delivery is at least once: a request may reach workers more than once (after a crash or
 * a reclaim); the producer settles each request once and drops the rest by id.
 *
 * @example
 * ```ts
 * const transport: BatchTransport = redisTransport({ url: 'redis://127.0.0.1:6379' });
 * const producer = await transport.openProducer('scorer', (frame) => handle(frame));
 * await producer.send([{ id: 'p1-1', replyTo: producer.replyTo, body: v8Codec.encode(42) }]);
 * ```
 */
export interface BatchTransport {
  /** A short name for messages and stats, e.g. `'redis'`. */
  readonly kind: string;
  /**
   * Opens the producer side of `subject`; `onReplies` receives every reply frame sent to it.
   * `onEvent` hears connection drops and returns; a transport whose replies can be lost while
   * a connection is down must report `'resubscribed'` once it hears replies again.
   */
  openProducer(subject: string, onReplies: (frame: Uint8Array) => void, onEvent?: (event: LinkEvent) => void): Promise<ProducerLink>;
  /** Opens the worker side of `subject` (joining the subject's consumer group). */
  openWorker(subject: string, options: WorkerLinkOptions): Promise<WorkerLink>;
  /** How many requests of `subject` wait in the broker and how many are delivered but not acknowledged. */
  backlog(subject: string): Promise<Backlog>;
}

/**
 * What waits in the broker for one subject: what to monitor.
 *
 * @example
 * ```ts
 * const { waiting, pending } = await transport.backlog('scorer');
 * ```
 */
export interface Backlog {
  /** Requests in the stream not yet delivered to any worker. */
  readonly waiting: number;
  /** Requests delivered to a worker and not yet acknowledged (running, or held by a dead worker). */
  readonly pending: number;
}

/**
 * One request on the wire.
 *
 * @example
 * ```ts
 * const message: RequestMessage = { id: 'a1b2-7', replyTo: producer.replyTo, body };
 * ```
 */
export interface RequestMessage {
  /** Unique among every producer of the subject. */
  readonly id: string;
  /** Where the worker sends the reply (a producer's `replyTo`). */
  readonly replyTo: string;
  /** The codec-encoded input. */
  readonly body: Uint8Array;
  /** The codec-encoded `context` of the call (`run(x, { context })`); absent when it gave none. */
  readonly context?: Uint8Array;
  /** The call's `priority` (`run(x, { priority })`); absent for the default, 0. */
  readonly priority?: number;
  /** When the caller gives up (ms on the producer's scheduler clock: since the epoch by default); absent when it waits forever. */
  readonly deadline?: number;
  /**
   * The request's signature (HMAC-SHA-256, 32 bytes) when producers sign (`auth`); absent
   * otherwise. A transport must carry it unchanged, or signing workers drop every request.
   */
  readonly mac?: Uint8Array;
}

/**
 * The producer side of a subject.
 *
 * @example
 * ```ts
 * await link.send([{ id, replyTo: link.replyTo, body }]);
 * ```
 */
export interface ProducerLink {
  /** The address replies to this producer go to. */
  readonly replyTo: string;
  /**
   * Appends requests to the subject's stream, in order, in as few round trips as the broker
   * allows (the producer sends everything issued in one turn of the event loop at once); resolves when the
   * broker has them all.
   */
  send(messages: readonly RequestMessage[]): Promise<void>;
  /**
   * After `'resubscribed'`: sends again those of `messages` (requests still waiting for their
   * reply) whose reply may have been published while replies could not be heard, and resolves
   * with how many it sent. It may skip requests it knows no worker has received yet (their
   * reply is still to come); the same request id twice is harmless (the producer drops the
   * second reply). Absent: the producer sends them all again with `send`.
   */
  resend?(messages: readonly RequestMessage[]): Promise<number>;
  /** Closes the connections; no more replies arrive. */
  close(): Promise<void>;
}

/**
 * Group-wide redelivery rules, given by the worker when it joins.
 *
 * @example
 * ```ts
 * const link = await transport.openWorker('scorer', { claimIdleMs: 2000, maxDeliveries: 5 });
 * ```
 */
export interface WorkerLinkOptions {
  /** A request delivered and not acknowledged or touched for this long goes to another worker. */
  readonly claimIdleMs: number;
  /** How many times a request may be run. One more delivery is made, answered with an error without running. */
  readonly maxDeliveries: number;
  /**
   * How many requests a pull may return when one of them is on its `deliveries`-th delivery
   * (the count this pull gives it): a pull's requests are taken in order and it ends before
   * one that would make it hold more than `redeliveryCap(d)` of any of them. So after a crash,
   * a worker takes no more of the crashed requests than it may run in one batch, and holds
   * nothing that a second crash would charge with a delivery it never ran. A transport whose
   * broker tells the count only by delivering (NATS) asks for one request at a time until it
   * gets one on its first delivery. Absent: no limit.
   */
  readonly redeliveryCap?: (deliveries: number) => number;
  /** Hears connection drops and returns. */
  readonly onEvent?: (event: LinkEvent) => void;
}

/**
 * A request handed to a worker.
 *
 * @example
 * ```ts
 * const [first] = await link.pull(32, true);
 * if (first.deliveries > 1) console.log('redelivered', first.id);
 * ```
 */
export interface Delivery extends RequestMessage {
  /** 1 on the first delivery, then 2, 3, … */
  readonly deliveries: number;
  /** Taken over from a worker that stopped answering (Redis `XAUTOCLAIM`, NATS redelivery after `ack_wait`). */
  readonly reclaimed: boolean;
  /** The transport's own handle (a stream entry id, a NATS ack subject). */
  readonly handle: unknown;
}

/**
 * A reply frame for one producer: every reply of one batch to that producer, in one message.
 *
 * @example
 * ```ts
 * await link.reply([{ replyTo: delivery.replyTo, frame }]);
 * ```
 */
export interface ReplyFrame {
  /** The producer's address (its `replyTo`). */
  readonly replyTo: string;
  /** The encoded replies. */
  readonly frame: Uint8Array;
}

/**
 * The worker side of a subject. Calls come from one worker loop: `pull` is never called
 * twice at once.
 *
 * @example
 * ```ts
 * const batch = await link.pull(32, true);
 * await link.reply(frames);
 * await link.ack(batch);
 * ```
 */
export interface WorkerLink {
  /**
   * Up to `max` requests. With `wait`, waits a while (the transport decides how long, at
   * most about a second) for the first and may return none; without, returns what is there.
   * Requests abandoned by other workers come back here too. Aborting `signal` ends a wait.
   */
  pull(max: number, wait: boolean, signal?: AbortSignal): Promise<Delivery[]>;
  /**
   * Optional: up to `max` requests that no worker was handed before (never a redelivery,
   * never one taken over from another worker), without waiting. A worker whose slots are all
   * busy uses it to fetch its next batch while the running one runs (only when a backlog
   * waits in the broker). A transport that cannot tell first deliveries apart omits it, and
   * its workers fetch nothing ahead.
   *
   * @example
   * ```ts
   * const next = link.pullFresh !== undefined ? await link.pullFresh(64) : [];
   * ```
   */
  pullFresh?(max: number, signal?: AbortSignal): Promise<Delivery[]>;
  /** Sends reply frames; resolves when the broker has them. */
  reply(frames: readonly ReplyFrame[]): Promise<void>;
  /** Acknowledges and deletes finished requests. Always after `reply`. */
  ack(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Optional: `reply(frames)` then `ack(deliveries)` in one round trip, with the same promise:
   * nothing is acknowledged unless its reply frames were accepted by the broker (a failure
   * leaves the requests pending, to be delivered again). Absent: the worker calls `reply`,
   * then `ack`.
   *
   * @example
   * ```ts
   * await link.finish?.(frames, batch);
   * ```
   */
  finish?(frames: readonly ReplyFrame[], deliveries: readonly Delivery[]): Promise<void>;
  /** Tells the broker these requests are still being worked on, so they are not reclaimed. */
  touch(deliveries: readonly Delivery[]): Promise<void>;
  /** Hands requests back unanswered, to be delivered again (as soon as the broker allows). */
  release(deliveries: readonly Delivery[]): Promise<void>;
  /** Leaves the group and closes the connections. */
  close(): Promise<void>;
}
