import type { PackedRequest } from './requestPacket.js';
import type { Delivery } from './transport.js';

/**
 * A broker entry (a Redis stream entry, a JetStream message) that holds a packet of requests,
 * as a worker link read it.
 *
 * @example
 * ```ts
 * const entry: PackedEntry<string> = { ref: '1700000000000-0', deliveries: 1, reclaimed: false, requests };
 * ```
 */
export interface PackedEntry<E> {
  /** The transport's handle on the entry: what it acknowledges, renews or hands back. */
  readonly ref: E;
  /** How many times the broker has delivered the entry (1 the first time). */
  readonly deliveries: number;
  /** Taken over from a worker that stopped answering. */
  readonly reclaimed: boolean;
  /** Its requests, in order. */
  readonly requests: readonly PackedRequest[];
}

/**
 * What a worker link must do on the broker after {@link PackedEntries.take} or
 * {@link PackedEntries.settle}, in this order: append each list of `again` (as one new entry
 * each), then acknowledge `acknowledge` and hand back `handBack`. Acknowledging an entry
 * before the requests moved out of it are appended again could lose them; do both in one
 * atomic step where the broker allows.
 *
 * @example
 * ```ts
 * const work = entries.settle(done, 'done');
 * for (const part of work.again) await append(encodeRequestPacket(part, (i) => part[i].earlier));
 * await acknowledge(work.acknowledge);
 * ```
 */
export interface EntryWork<E> {
  /** Requests to append again, each list as a new entry of its own, each request with its `earlier` deliveries set. Never an empty list. */
  readonly again: PackedRequest[][];
  /** Entries every request of which is finished or moved: acknowledge (and delete) them. */
  readonly acknowledge: E[];
  /** Entries handed back whole: the broker delivers them again (and counts a delivery). */
  readonly handBack: E[];
}

/** The `handle` of a {@link Delivery} read from a packed entry. */
interface EntryRecord<E> {
  readonly entry: PackedEntry<E>;
  /** Its requests handed out or held here and not yet finished, handed back or moved. */
  open: number;
  /** None of its requests was finished or moved yet: a release of all of them may hand the entry back whole. */
  whole: boolean;
}

/**
 * The bookkeeping of a worker link whose broker holds packets of requests (one entry per
 * producer tick) while the worker hands out, runs and answers single requests. The rules live
 * here once, for every such transport:
 *
 * - A pull takes requests in order, up to its room, and ends before one that would make it
 *   hold more than `redeliveryCap(d)` of any request on its `d`-th delivery (a request's `d` is
 *   its `earlier` deliveries plus its entry's).
 * - What a pull leaves of an entry on its first delivery is held here and handed out first by
 *   the next pull, like a fetched-ahead request.
 * - A redelivered entry (one holding a request on a delivery past its first) is handed out
 *   whole or not at all. One the pull cannot hand out whole is cut ({@link splitForCap}) into
 *   parts that a pull each may hand out whole, appended again (not charged the delivery they
 *   were not run in), and acknowledged, in one step: so a worker never holds more redelivered
 *   requests than one batch of them may hold, and never runs part of an entry whose other
 *   requests it moved (delivered again whole after a crash, the moved ones would come twice,
 *   charged a delivery they never ran).
 * - An entry is acknowledged when every request of it is finished or moved. A request handed
 *   back alone is moved (charged its delivery); an entry all of whose requests are handed back
 *   before any finished goes back whole. What a closing link held and never handed out
 *   ({@link PackedEntries.drain}) is moved uncharged: it was not run in this delivery, and a
 *   draining worker's stop must not cost the requests it read ahead a delivery.
 *
 * @example
 * ```ts
 * const entries = new PackedEntries<string>(linkOptions.redeliveryCap);
 * const { deliveries, work } = entries.take(max, readEntries);
 * await carryOut(work);
 * return deliveries;
 * ```
 */
export class PackedEntries<E> {
  /** First deliveries read beyond an earlier pull's room, in order. */
  private held: Delivery[] = [];
  /** Held requests taken back by {@link drain}: never handed out, so never charged when released. */
  private readonly drained = new WeakSet<Delivery>();
  /** A running mean of requests per entry taken (0: none taken yet). */
  private perEntry = 0;

  constructor(private readonly redeliveryCap?: (deliveries: number) => number) {}

  /** How many requests are held for the next pull. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Requests per entry taken lately (a running mean; 0 before any was taken). */
  get meanEntrySize(): number {
    return this.perEntry;
  }

  /**
   * How many entries a read should ask the broker for to fill `room` requests, by the mean
   * size of the entries taken so far: enough to fill it (what the last one holds beyond the
   * room is held for the next pull), 1 before any was taken. A transport that reads fewer
   * than it asked for has read all that was waiting; one that read as many should read again
   * while its pull has room.
   *
   * @example
   * ```ts
   * const entries = await readEntries(ledger.entriesFor(max - ledger.heldCount));
   * ```
   */
  entriesFor(room: number): number {
    if (room <= 0) return 0;
    return this.perEntry === 0 ? 1 : Math.max(1, Math.ceil(room / this.perEntry));
  }

  /**
   * Hands out up to `room` requests: the held ones first, then those of `entries` in order.
   * A redelivered entry that does not fit whole is cut: `work.again` holds its parts and
   * `work.acknowledge` the entry (append them and acknowledge it in one step before handing
   * out what the pull returns). Nothing else is acknowledged here: an entry is acknowledged
   * when its last request handed out is finished.
   */
  take(room: number, entries: readonly PackedEntry<E>[] = []): { deliveries: Delivery[]; work: EntryWork<E> } {
    const out: Delivery[] = [];
    const again: PackedRequest[][] = [];
    const acknowledge: E[] = [];
    let limit = Math.max(0, room);
    let stopped = false;
    let h = 0;
    for (; h < this.held.length; h++) {
      const d = this.held[h];
      if (!this.fits(out.length, limit, d.deliveries)) {
        stopped = true;
        break;
      }
      out.push(d);
      limit = Math.min(limit, this.capOf(d.deliveries));
    }
    this.held = h === this.held.length ? [] : this.held.slice(h);
    if (entries.length > 0) {
      let requests = 0;
      for (const entry of entries) requests += entry.requests.length;
      const mean = requests / entries.length;
      this.perEntry = this.perEntry === 0 ? mean : (this.perEntry + mean) / 2;
    }
    for (const entry of entries) {
      const record: EntryRecord<E> = { entry, open: entry.requests.length, whole: true };
      const redelivered = entry.requests.some((r) => r.earlier + entry.deliveries > 1);
      if (redelivered) {
        const whole = stopped ? undefined : this.wholeFit(out.length, limit, entry);
        if (whole !== undefined) {
          for (const request of entry.requests) out.push(toDelivery(request, entry, record));
          limit = whole;
          continue;
        }
        // Not run in this delivery: cut into parts a pull may hand out whole, each request as
        // it was before this delivery (not charged), and acknowledged with their appending.
        again.push(...(splitForCap(entry, Math.max(1, room), this.redeliveryCap) ?? [uncharged(entry)]));
        acknowledge.push(entry.ref);
        continue;
      }
      for (const request of entry.requests) {
        const delivery = toDelivery(request, entry, record);
        if (!stopped && this.fits(out.length, limit, delivery.deliveries)) {
          out.push(delivery);
          limit = Math.min(limit, this.capOf(delivery.deliveries));
          continue;
        }
        stopped = true;
        this.held.push(delivery);
      }
      if (record.open === 0) acknowledge.push(entry.ref); // it holds no request
    }
    return { deliveries: out, work: { again, acknowledge, handBack: [] } };
  }

  /**
   * Records that `deliveries` (handed out by {@link take}) are `'done'` (answered or dropped:
   * nothing more to do for them) or `'released'` (handed back unanswered, to be delivered
   * again), and says what to do on the broker.
   */
  settle(deliveries: readonly Delivery[], how: 'done' | 'released'): EntryWork<E> {
    const moved: PackedRequest[] = [];
    const acknowledge: E[] = [];
    const handBack: E[] = [];
    const again = (): PackedRequest[][] => (moved.length === 0 ? [] : [moved]);
    if (how === 'done') {
      for (const d of deliveries) {
        const record = recordOf<E>(d);
        record.whole = false;
        if (--record.open === 0) acknowledge.push(record.entry.ref);
      }
      return { again: again(), acknowledge, handBack };
    }
    const released = new Map<EntryRecord<E>, Delivery[]>();
    for (const d of deliveries) {
      const record = recordOf<E>(d);
      const list = released.get(record);
      if (list === undefined) released.set(record, [d]);
      else list.push(d);
    }
    for (const [record, list] of released) {
      // Handed back whole (the broker counts a delivery) only if every request of it was handed out.
      if (record.whole && list.length === record.open && !list.some((d) => this.drained.has(d))) {
        record.open = 0;
        handBack.push(record.entry.ref);
        continue;
      }
      // Handed back alone: appended again, charged the delivery it had (as a whole entry handed
      // back would be), unless it was never handed out.
      for (const d of list) moved.push({ ...(d as PackedDelivery<E>).request, earlier: this.drained.has(d) ? d.deliveries - 1 : d.deliveries });
      record.whole = false;
      record.open -= list.length;
      if (record.open === 0) acknowledge.push(record.entry.ref);
    }
    return { again: again(), acknowledge, handBack };
  }

  /**
   * Empties the held requests (a closing link hands them back with {@link settle}, which moves
   * them uncharged: they were never handed out).
   *
   * @example
   * ```ts
   * await carryOut(entries.settle(entries.drain(), 'released'));
   * ```
   */
  drain(): Delivery[] {
    const held = this.held;
    this.held = [];
    for (const d of held) this.drained.add(d);
    return held;
  }

  /**
   * The distinct entries of `deliveries` and of the held requests: what a renewal of the
   * claims on `deliveries` must renew.
   */
  entriesOf(deliveries: readonly Delivery[]): E[] {
    const seen = new Set<EntryRecord<E>>();
    const refs: E[] = [];
    for (const list of [deliveries, this.held]) {
      for (const d of list) {
        const record = recordOf<E>(d);
        if (seen.has(record)) continue;
        seen.add(record);
        refs.push(record.entry.ref);
      }
    }
    return refs;
  }

  private capOf(deliveries: number): number {
    return this.redeliveryCap === undefined ? Infinity : this.redeliveryCap(deliveries);
  }

  private fits(taken: number, limit: number, deliveries: number): boolean {
    return taken < limit && (taken === 0 || taken < this.capOf(deliveries));
  }

  /** The pull's limit once every request of `entry` is handed out after `taken`, or `undefined` if not all of them fit. */
  private wholeFit(taken: number, limit: number, entry: PackedEntry<E>): number | undefined {
    for (const request of entry.requests) {
      const deliveries = request.earlier + entry.deliveries;
      if (!this.fits(taken, limit, deliveries)) return undefined;
      taken++;
      limit = Math.min(limit, this.capOf(deliveries));
    }
    return limit;
  }
}

/**
 * The entry a delivery handed out by {@link PackedEntries.take} came from.
 *
 * @example
 * ```ts
 * const ref = entryOf<string>(delivery); // the stream entry id
 * ```
 */
export function entryOf<E>(delivery: Delivery): E {
  return recordOf<E>(delivery).entry.ref;
}

type PackedDelivery<E> = Delivery & { readonly handle: EntryRecord<E>; readonly request: PackedRequest };

function recordOf<E>(delivery: Delivery): EntryRecord<E> {
  return (delivery as PackedDelivery<E>).handle;
}

/** Every request of `entry` as it was before this delivery (its `earlier` deliveries counting those before it). */
function uncharged<E>(entry: PackedEntry<E>): PackedRequest[] {
  return entry.requests.map((r) => ({ ...r, earlier: r.earlier + entry.deliveries - 1 }));
}

function toDelivery<E>(request: PackedRequest, entry: PackedEntry<E>, record: EntryRecord<E>): Delivery {
  const d: { -readonly [K in keyof PackedDelivery<E>]: PackedDelivery<E>[K] } = {
    id: request.id,
    replyTo: request.replyTo,
    body: request.body,
    deliveries: request.earlier + entry.deliveries,
    reclaimed: entry.reclaimed,
    handle: record,
    request,
  };
  if (request.deadline !== undefined) d.deadline = request.deadline;
  if (request.context !== undefined) d.context = request.context;
  if (request.priority !== undefined) d.priority = request.priority;
  if (request.mac !== undefined) d.mac = request.mac;
  return d;
}

/**
 * Cuts a redelivered entry that one batch may not run whole into parts that one batch each
 * may: consecutive runs of at most `max` requests, each holding no more than `cap(d)` of any
 * request on its `d`-th delivery (its earlier deliveries plus the entry's). Each request is
 * given back the delivery it was not run in (`earlier` = its deliveries less one), so that the
 * parts, appended again as entries of their own, come back with the same counts. `undefined`
 * when the entry fits whole.
 *
 * {@link PackedEntries.take} cuts with it a redelivered entry a pull cannot hand out whole: the
 * parts are appended and the entry acknowledged in one step, rather than part of it run and the
 * rest moved (were the entry delivered again after a crash, the moved requests would come a
 * second time, charged a delivery they never ran).
 *
 * @example
 * ```ts
 * const parts = splitForCap(entry, 64, linkOptions.redeliveryCap);
 * if (parts !== undefined) await appendAndAcknowledge(parts.map((p) => encodeRequestPacket(p, (i) => p[i].earlier)), entry.ref);
 * ```
 */
export function splitForCap<E>(entry: PackedEntry<E>, max: number, cap: (deliveries: number) => number = () => Infinity): PackedRequest[][] | undefined {
  const parts: PackedRequest[][] = [];
  let part: PackedRequest[] = [];
  let limit = max;
  for (const request of entry.requests) {
    const c = cap(request.earlier + entry.deliveries);
    if (part.length > 0 && part.length >= Math.min(limit, c)) {
      parts.push(part);
      part = [];
      limit = max;
    }
    part.push({ ...request, earlier: request.earlier + entry.deliveries - 1 });
    limit = Math.min(limit, c);
  }
  if (part.length > 0) parts.push(part);
  return parts.length <= 1 ? undefined : parts;
}
