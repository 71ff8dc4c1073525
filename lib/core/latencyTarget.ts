import type { LatencyTarget } from '../types.js';

/**
 * What the latency-target controller believes, as `stats().latencyTarget` shows it (while a
 * `latencyTarget` is in force). Times are in ms of the batcher's scheduler clock.
 *
 * @example
 * ```ts
 * const t = batcher.stats().latencyTarget;
 * if (t) console.log(`batch ≈ ${t.fixedMs} + ${t.perItemMs}·n ms; waits ${t.waitMs} ms; ${t.overTarget} over ${t.p99Ms} ms`);
 * ```
 */
export interface LatencyTargetStats {
  /** The objective in force (`latencyTarget.p99Ms`). */
  readonly p99Ms: number;
  /** The learned batch time is `fixedMs + perItemMs × size`: its fixed part, per call (0 until a batch has finished). */
  readonly fixedMs: number;
  /** …and its part per input (ms). */
  readonly perItemMs: number;
  /** Finished batches it learned from. */
  readonly samples: number;
  /** The arrival rate it expects, from recent traffic (requests per second). */
  readonly arrivalsPerSec: number;
  /**
   * Kept in reserve below the target for what it cannot predict: 1 ms of clock resolution, the
   * spread of batch times around the learned line and how late windows have closed, corrected
   * by what came out (more while over 1 request in 400 of its batches misses the target, less
   * while fewer do).
   */
  readonly marginMs: number;
  /** The wait chosen for the latest window, counted from its oldest request (never above `maxDelayMs`). */
  readonly waitMs: number;
  /** Requests whose queue wait + batch time came out above `p99Ms` (compare with `succeeded`). */
  readonly overTarget: number;
}

/** What the controller reads of the engine: its clock, the batches running, the rules in force. */
export interface TargetEngineView {
  /** The engine's clock: whole ms since it started (see `BatchEngine`). */
  readonly clock: () => number;
  /** Batches running now: when each started and how many requests it holds. */
  readonly running: ReadonlySet<{ readonly startedAt: number; readonly requests: readonly { readonly enqueuedAt: number }[] }>;
  /** Requests submitted so far (the engine's counter), to estimate the arrival rate. */
  readonly counters: { readonly submitted: number };
  /** The rules in force (they change with `configure()`). */
  readonly rules: () => {
    readonly latencyTarget: LatencyTarget | undefined;
    readonly maxBatchSize: number;
    readonly maxConcurrentBatches: number;
  };
}

/** A finished batch, as the controller learns from it. */
export interface FinishedSample {
  /** Only batches the target cut steer the reserve: the others did not follow its decision. */
  readonly reason: string;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly requests: readonly { readonly enqueuedAt: number }[];
}

/** Sizes must spread this much (standard deviation, items) before the slope is taken at face value. */
const MIN_SIZE_SPREAD = 2;
/** z for a one-sided 99% bound under a normal spread. */
const Z99 = 2.33;
/** Weight left to older batches at each new one: the fit remembers roughly the last 10 batches. */
const FORGET = 0.9;
/** After a surprise (the model changed: another tenant, a new version), older batches keep this share of their weight. */
const SURPRISE_KEEP = 0.1;
/** How fast the error and lateness spreads follow new samples. */
const SPREAD_ALPHA = 0.1;
/** The arrival rate estimate averages over about this many ms. */
const RATE_WINDOW_MS = 100;
/** The share of requests the feedback lets out over the target: below 1%, so the p99 stays under. */
const OVER_SHARE = 0.0025;
/** ms one request over the target adds to the reserve; one within takes `OVER_SHARE` of that away. */
const FEEDBACK_STEP_MS = 0.2;
/** The most one batch moves the reserve up, in steps. */
const MAX_STEPS = 5;

/**
 * The adaptive latency target (`latencyTarget: { p99Ms }`): learns the model's batch time as a
 * function of batch size from finished batches, and chooses how long each window stays open.
 *
 * **Learning.** A line `t(n) = a + b·n` fitted by exponentially forgetting least squares over
 * (size, duration) of successful batches: recent batches count most, and two batches in a
 * row far off the line the same way (by more than a quarter of the prediction and three
 * spreads) mark a changed model, whose older batches then lose most of their weight. An error
 * beyond a quarter of the target counts as that much: a stall of the machine, not of the
 * model. The slope is kept ≥ 0 and pulled towards 0 while the sizes seen vary by less than two
 * items, so from batches of one size alone it predicts that size's time for every size, and
 * corrects itself as soon as batches of other sizes have run.
 *
 * **Deciding.** For a queue whose oldest request has waited `w`, holding `k` requests, with
 * arrivals at rate `λ` and a slot free in `s` ms, cutting after `x` more ms (`x ≥ s`: before a
 * slot frees, late sealing waits anyway) finishes the oldest at
 *
 * ```
 * w + x + t(min(maxBatchSize, k + λ·x))   which must stay ≤ p99Ms − margin
 * ```
 *
 * It waits the largest such `x`, in whole ms, never beyond `maxDelayMs`. When even `x = s`
 * breaks the target, the queue is due now (and goes when a slot frees). Before any batch has
 * finished it knows nothing, so the first window closes at once, to measure.
 *
 * **The margin** covers what it cannot predict: 1 ms of clock resolution, plus a 99% bound of
 * its batch-time errors and of how late windows closed (mean + 2.33 spreads, both followed
 * with exponential weights), plus a correction from what came out: every request of a batch
 * it cut that still finished over the target adds 0.2 ms (at most 1 ms per batch), every
 * one in time takes 0.0005 ms away, so the share over the target settles near 0.25% or below
 * (the p99 then stays under it), and a margin that proves too cautious shrinks.
 *
 * @example
 * ```ts
 * const controller = new TargetController({ clock, running, counters, rules: () => config });
 * const wait = controller.windowLeft(waited, queue.live, maxDelayMs - waited, false);
 * ```
 */
export class TargetController {
  /** The fit: the samples' total weight (each batch counts 1, then fades by FORGET per later batch)… */
  private weight = 0;
  /** …their weighted mean size and duration… */
  private meanSize = 0;
  private meanTime = 0;
  /** …and weighted sums of squared size deviations and of size × duration deviations. */
  private sizeVar = 0;
  private sizeTimeCov = 0;
  /** Batches learned from, ever. */
  private samples = 0;
  /** Batch-time prediction errors (actual − predicted, clipped). */
  private readonly error = new Spread();
  /** How far past the best moment windows were when their timer fired (ms). */
  private readonly lateness = new Spread();
  /** Arrivals per ms (smoothed), and the clock and submitted count when it was last updated. */
  private rate = 0;
  private rateAt = Number.NaN;
  private rateSubmitted = 0;
  /** The wait chosen for the latest window, from its oldest request (ms), for stats. */
  private lastWait = 0;
  /** Requests that came out over the target, for stats. */
  private overTarget = 0;
  /** The feedback's correction of the reserve (ms), from how many requests came out over the target. */
  private correction = 0;
  /** The sign of the last batch far off the line (0: it was not). */
  private lastSurprise = 0;
  /** The last snapshot, until something changes. */
  private cached: LatencyTargetStats | undefined = undefined;

  constructor(private readonly view: TargetEngineView) {}

  /** The learned intercept `a` (ms). */
  get fixedMs(): number {
    return Math.max(0, this.meanTime - this.perItemMs * this.meanSize);
  }

  /**
   * The learned slope `b` (ms per item). While the sizes seen vary by less than
   * {@link MIN_SIZE_SPREAD} items it is pulled towards 0: a slope from a few near-equal sizes and
   * whole-ms durations is mostly noise, and one too steep would keep batches small for good.
   */
  get perItemMs(): number {
    return this.weight === 0 ? 0 : Math.max(0, this.sizeTimeCov / Math.max(this.sizeVar, MIN_SIZE_SPREAD ** 2 * this.weight));
  }

  /** ms kept below the target for what cannot be predicted. */
  get marginMs(): number {
    return Math.max(0, 1 + Math.max(0, this.error.upper(Z99)) + Math.max(0, this.lateness.upper(Z99)) + this.correction);
  }

  /** The predicted time of a batch of `size` requests. */
  predict(size: number): number {
    return this.fixedMs + this.perItemMs * size;
  }

  /**
   * How many ms from now the window of a queue may stay open: at most `capLeft` (what is left
   * of `maxDelayMs`), less when waiting that long would break the target; 0 or less: due now.
   * `fired`: called from the window's timer, so how late it closed is measured.
   */
  windowLeft(waited: number, live: number, capLeft: number, fired: boolean): number {
    const rules = this.view.rules();
    const target = rules.latencyTarget;
    if (target === undefined) return capLeft;
    this.cached = undefined;
    const now = this.view.clock();
    const rate = this.arrivalRate(now);
    let latest = 0;
    if (this.samples > 0) {
      // The latest start x (ms from now) that still finishes the oldest request in time.
      const budget = target.p99Ms - this.marginMs - waited;
      const a = this.fixedMs;
      const b = this.perItemMs;
      const max = rules.maxBatchSize;
      latest = (budget - a - b * live) / (1 + b * rate);
      // Past the point where the batch fills it stops growing (and the time left is then at least that point).
      if (rate > 0 && live + rate * latest > max) latest = budget - a - b * max;
      if (fired) this.lateness.add(Math.min(target.p99Ms / 4, Math.max(0, -latest)), SPREAD_ALPHA);
      if (latest < this.slotFreeIn(now, rules.maxConcurrentBatches)) latest = 0;
    }
    const wait = Math.min(capLeft, Math.max(0, Math.floor(latest)));
    this.lastWait = waited + Math.max(0, wait);
    return wait;
  }

  /** Learns from a batch that succeeded: its size and duration, and whether its requests made the target. */
  finished(batch: FinishedSample): void {
    this.cached = undefined;
    const target = this.view.rules().latencyTarget;
    if (target !== undefined) this.steer(batch, target.p99Ms);
    this.learnTime(batch.requests.length, (batch.finishedAt - batch.startedAt) | 0, target === undefined ? Infinity : target.p99Ms / 4);
  }

  /** What it believes now, frozen; `undefined` while no target is in force. Rebuilt only after a change. */
  snapshot(): LatencyTargetStats | undefined {
    const target = this.view.rules().latencyTarget;
    if (target === undefined) return undefined;
    if (this.cached !== undefined && this.cached.p99Ms === target.p99Ms) return this.cached;
    this.cached = Object.freeze({
      p99Ms: target.p99Ms,
      fixedMs: round(this.fixedMs),
      perItemMs: round(this.perItemMs),
      samples: this.samples,
      arrivalsPerSec: round(this.rate * 1000),
      marginMs: round(this.marginMs),
      waitMs: round(this.lastWait),
      overTarget: this.overTarget,
    });
    return this.cached;
  }

  // Private: the feedback and the fit.

  /**
   * Counts the batch's requests over the target and, for a batch the target cut, moves the
   * reserve: up a step per late request, down OVER_SHARE of a step per request in time, which
   * settles where OVER_SHARE are late. Ticks are whole ms, so a request counted at exactly the
   * target may have been up to 1 ms over: the feedback counts it as late. A batch late as a
   * whole (the model stalled) moves the reserve by at most MAX_STEPS steps.
   */
  private steer(batch: FinishedSample, p99Ms: number): void {
    let over = 0;
    let late = 0;
    for (const r of batch.requests) {
      const latency = (batch.finishedAt - r.enqueuedAt) | 0;
      if (latency > p99Ms) over++;
      if (latency >= p99Ms) late++;
    }
    this.overTarget += over;
    if (batch.reason !== 'target') return;
    const steps = Math.min(MAX_STEPS, late * (1 - OVER_SHARE)) - (batch.requests.length - late) * OVER_SHARE;
    this.correction = Math.min(p99Ms / 2, Math.max(-p99Ms / 2, this.correction + FEEDBACK_STEP_MS * steps));
  }

  /**
   * One batch's time. Errors beyond `limit` (a quarter of the target: a stall of the machine,
   * not of the model) count as `limit`, so one stall neither bends the line nor swells the
   * margin for long. Two batches in a row far off the line, the same way, mean the model
   * changed: older batches then lose most of their weight.
   */
  private learnTime(size: number, time: number, limit: number): void {
    if (this.samples > 0) {
      const predicted = this.predict(size);
      const error = time - predicted;
      const surprise = this.samples > 1 && Math.abs(error) > 1 + Math.max(3 * this.error.deviation, predicted / 4) ? Math.sign(error) : 0;
      if (surprise !== 0 && surprise === this.lastSurprise) this.forget(SURPRISE_KEEP);
      this.lastSurprise = surprise;
      const clipped = Math.max(-limit, Math.min(limit, error));
      this.error.add(clipped, SPREAD_ALPHA);
      time = predicted + clipped;
    }
    this.learn(size, time);
  }

  /** One more (size, time) sample, older ones weighing `FORGET` as much as before. */
  private learn(size: number, time: number): void {
    this.forget(FORGET);
    this.weight += 1;
    const dSize = size - this.meanSize;
    const dTime = time - this.meanTime;
    this.meanSize += dSize / this.weight;
    this.meanTime += dTime / this.weight;
    this.sizeVar += dSize * (size - this.meanSize);
    this.sizeTimeCov += dSize * (time - this.meanTime);
    this.samples++;
  }

  /** Scales the weight of every sample so far (means and slope unchanged; new samples count more). */
  private forget(keep: number): void {
    this.weight *= keep;
    this.sizeVar *= keep;
    this.sizeTimeCov *= keep;
  }

  /** ms until a slot frees: 0 with one free, else when the first running batch should end. */
  private slotFreeIn(now: number, slots: number): number {
    const running = this.view.running;
    if (running.size < slots) return 0;
    let soonest = Infinity;
    for (const batch of running) {
      const left = batch.startedAt + this.predict(batch.requests.length) - now;
      if (left < soonest) soonest = left;
    }
    return Math.max(0, soonest);
  }

  /** Arrivals per ms, averaged over about the last {@link RATE_WINDOW_MS}. */
  private arrivalRate(now: number): number {
    const submitted = this.view.counters.submitted;
    if (Number.isNaN(this.rateAt)) {
      this.rateAt = now;
      this.rateSubmitted = submitted;
      return this.rate;
    }
    const dt = (now - this.rateAt) | 0;
    if (dt <= 0) return this.rate;
    const seen = (submitted - this.rateSubmitted) / dt;
    this.rate += (1 - Math.exp(-dt / RATE_WINDOW_MS)) * (seen - this.rate);
    this.rateAt = now;
    this.rateSubmitted = submitted;
    return this.rate;
  }
}

// Private: an exponentially weighted mean and spread.
class Spread {
  private mean = 0;
  private variance = 0;
  private seen = false;

  get deviation(): number {
    return Math.sqrt(this.variance);
  }

  add(x: number, alpha: number): void {
    if (!this.seen) {
      this.seen = true;
      this.mean = x;
      return;
    }
    const d = x - this.mean;
    this.mean += alpha * d;
    this.variance = (1 - alpha) * (this.variance + alpha * d * d);
  }

  /** mean + z × deviation (0 before any sample). */
  upper(z: number): number {
    return this.seen ? this.mean + z * this.deviation : 0;
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
