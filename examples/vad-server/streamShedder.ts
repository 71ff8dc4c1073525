import { FRAMES_PER_SECOND } from '../models';

/**
 * What {@link StreamShedder} needs of a stream: how far behind real time it is, and whether it
 * still takes audio (an ended or closed stream is neither counted nor let go).
 *
 * @example
 * ```ts
 * const stream: Lagging = { lagMs: 120, isOpen: true };
 * ```
 */
export interface Lagging {
  readonly lagMs: number;
  readonly isOpen: boolean;
}

/**
 * Decides which live streams a server that cannot keep up tells to go, newest first, so the
 * older ones stay in real time.
 *
 * Each stream scores one frame at a time, so when one round of batches takes longer than a
 * frame lasts (32 ms) every stream falls behind, the oldest too: telling streams one by one as
 * each passes its limit would end with none left. Instead, once some stream is half its limit
 * (`maxLagMs / 2`) behind while frames arrive faster than they are scored, the newest streams
 * go at once: all but as many as the frames scored would feed live (at least one goes). New
 * streams are turned away for the next `maxLagMs` while the ones kept catch up; a quarter of
 * `maxLagMs` later, if still behind and still falling further, more go. It looks once per
 * window of `windowMs` (on the given clock, when audio arrives: no timer), at that window's
 * rates; what the server can score is the best of the last four windows (one may stall).
 *
 * @example
 * ```ts
 * const shedder = new StreamShedder<VadStream>({ maxLagMs: 1000, now: () => performance.now() });
 * shedder.add(stream);
 * shedder.arrived(3); // on each audio message: frames received
 * shedder.scored(64); // on each batch: frames scored
 * for (const newest of shedder.check()) tellToGo(newest);
 * ```
 */
export class StreamShedder<S extends Lagging> {
  readonly #maxLagMs: number;
  readonly #now: () => number;
  readonly #windowMs: number;
  /** Open streams, oldest first (a Set keeps insertion order). */
  readonly #streams = new Set<S>();
  /** Frames received and scored in the current window, and when it began. */
  #arrived = 0;
  #scored = 0;
  #windowStart: number;
  /** When streams were last told to go. */
  #shedAt = -Infinity;
  /** Frames scored per second in the last few windows: their best is the capacity (one window can stall). */
  #recentScored: number[] = [];

  constructor(options: { readonly maxLagMs: number; readonly now: () => number; readonly windowMs?: number }) {
    this.#maxLagMs = options.maxLagMs;
    this.#now = options.now;
    this.#windowMs = options.windowMs ?? 250;
    this.#windowStart = this.#now();
  }

  /** A new stream (the newest). */
  add(stream: S): void {
    this.#streams.add(stream);
  }

  /** A stream closed. */
  remove(stream: S): void {
    this.#streams.delete(stream);
  }

  /** Frames received (may be fractional: audio comes in any chunk size). */
  arrived(frames: number): void {
    this.#arrived += frames;
  }

  /** Frames scored. */
  scored(frames: number): void {
    this.#scored += frames;
  }

  /** Whether new streams are turned away now: streams were told to go less than `maxLagMs` ago. */
  get refusing(): boolean {
    return this.#now() - this.#shedAt < this.#maxLagMs;
  }

  /** The streams to tell to go now, newest first; none while keeping up. Looks once a window. */
  check(): S[] {
    const now = this.#now();
    if (now - this.#windowStart < this.#windowMs) return [];
    const arrivedPerSecond = (this.#arrived * 1000) / (now - this.#windowStart);
    const scoredPerSecond = (this.#scored * 1000) / (now - this.#windowStart);
    this.#arrived = 0;
    this.#scored = 0;
    this.#windowStart = now;
    this.#recentScored.push(scoredPerSecond);
    if (this.#recentScored.length > 4) this.#recentScored.shift();
    if (now - this.#shedAt < this.#maxLagMs / 4 || arrivedPerSecond <= scoredPerSecond) return [];
    const open = [...this.#streams].filter((stream) => stream.isOpen);
    if (!open.some((stream) => stream.lagMs > this.#maxLagMs / 2)) return [];
    this.#shedAt = now;
    // Keep as many live streams as the frames scored would feed; at least one goes.
    const keep = Math.min(open.length - 1, Math.floor(Math.max(...this.#recentScored) / FRAMES_PER_SECOND));
    return open.slice(keep).reverse();
  }
}
