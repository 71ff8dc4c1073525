import { FRAME_SAMPLES, FrameCutter, SAMPLE_RATE, initialSileroState, type SileroFrame, type SileroResult } from '../models';
import type { VadMessage } from './protocol';
import { SpeechDetector, type DetectorOptions } from './speechDetector';

/**
 * Scores one frame of one stream: straight through the model, or through a shared `Batcher`.
 * `signal` aborts when the stream closes (a queued frame then never reaches the model).
 *
 * @example
 * ```ts
 * const score: ScoreFrame = (frame, signal) => batcher.run(frame, { signal });
 * ```
 */
export type ScoreFrame = (frame: SileroFrame, signal: AbortSignal) => Promise<SileroResult>;

/** One frame's length, in ms of audio. */
const FRAME_MS = (FRAME_SAMPLES * 1000) / SAMPLE_RATE;

/**
 * The server cannot score a stream in real time: it fell further behind than `maxLagMs` (its
 * oldest frame not yet scored should have been scored `lagMs` ago), or it was among the newest
 * when the server had to let streams go, or it arrived while the server was doing so. The
 * server tells the client (`overloaded`, close code 1013) instead of letting the delay grow.
 *
 * @example
 * ```ts
 * if (error instanceof StreamOverloadedError) socket.close(1013, 'try again later');
 * ```
 */
export class StreamOverloadedError extends Error {
  override readonly name = 'StreamOverloadedError';

  constructor(
    message: string,
    /** How far behind real time the stream was, in ms (0 for one turned away on arrival). */
    readonly lagMs: number,
  ) {
    super(message);
  }

  /**
   * The stream passed its own limit.
   *
   * @example
   * ```ts
   * StreamOverloadedError.behind(1100, 1000).message; // 'the server cannot score this stream in real time: it is 1100 ms behind (limit 1000 ms); try again later'
   * ```
   */
  static behind(lagMs: number, maxLagMs: number): StreamOverloadedError {
    return new StreamOverloadedError(`the server cannot score this stream in real time: it is ${Math.round(lagMs)} ms behind (limit ${maxLagMs} ms); try again later`, lagMs);
  }

  /**
   * The server let the newest streams go to keep the others in real time.
   *
   * @example
   * ```ts
   * StreamOverloadedError.shed(300).message;
   * ```
   */
  static shed(lagMs: number): StreamOverloadedError {
    return new StreamOverloadedError(`the server cannot keep every stream in real time and lets the newest go (this one was ${Math.round(lagMs)} ms behind); try again later`, lagMs);
  }

  /**
   * The stream arrived while the server was letting streams go.
   *
   * @example
   * ```ts
   * StreamOverloadedError.refused().message; // 'the server cannot take another live stream now; try again later'
   * ```
   */
  static refused(): StreamOverloadedError {
    return new StreamOverloadedError('the server cannot take another live stream now; try again later', 0);
  }
}

/**
 * Options of a {@link VadStream}.
 *
 * @example
 * ```ts
 * const options: VadStreamOptions = { probabilities: true, detector: { minSilenceMs: 200 } };
 * ```
 */
export interface VadStreamOptions {
  /** Send a `frame` message with every frame's probability. @default false */
  readonly probabilities?: boolean;
  /** Hysteresis rules for speech events. */
  readonly detector?: DetectorOptions;
  /**
   * Frames allowed to wait for scoring; a client sending audio faster than it can be scored
   * beyond this is failed with an error instead of growing the server's memory.
   * @default 2000 (64 s of audio)
   */
  readonly maxPendingFrames?: number;
  /**
   * How far behind real time scoring may fall, in ms: beyond it the stream fails with
   * {@link StreamOverloadedError}. Each frame is due when it arrived, or 32 ms after the frame
   * before it if that is later, so audio sent faster than real time (a file) is not behind.
   * @default 1000
   */
  readonly maxLagMs?: number;
  /** The clock lag is measured on, in ms (tests pass their own). @default performance.now */
  readonly now?: () => number;
}

/**
 * One audio stream on the server: cuts incoming samples into frames, scores them strictly in
 * order with at most one frame in flight (a frame needs the state its predecessor produced),
 * carries the model state and the 64-sample context, and emits speech events as they happen.
 * Frames of many streams meet in the shared `Batcher` behind `score`.
 *
 * @example
 * ```ts
 * const stream = new VadStream((frame) => batcher.run(frame), (message) => socket.send(JSON.stringify(message)));
 * stream.push(samples);
 * stream.end(); // sends `done` after the last frame
 * ```
 */
export class VadStream {
  readonly #score: ScoreFrame;
  readonly #send: (message: VadMessage) => void;
  readonly #fail: (error: unknown) => void;
  readonly #probabilities: boolean;
  readonly #maxPending: number;
  readonly #maxLagMs: number;
  readonly #now: () => number;
  readonly #cutter = new FrameCutter();
  readonly #detector: SpeechDetector;
  /** Aborted on close: a frame still queued in the batcher is dropped. */
  readonly #closing = new AbortController();
  /** Frames cut but not scored yet; `#head` is the next one. */
  #queue: Float32Array[] = [];
  /** When each frame of `#queue` is due (same index): see `maxLagMs`. */
  #due: number[] = [];
  #head = 0;
  /** When the frame being scored was due; `Infinity` when none is. */
  #dueInFlight = Infinity;
  /** When the last frame cut was due. */
  #lastDue = -Infinity;
  #state = initialSileroState();
  #scored = 0;
  #busy = false;
  #ending = false;
  #closed = false;
  readonly #finished: Promise<void>;
  #markFinished!: () => void;

  constructor(score: ScoreFrame, send: (message: VadMessage) => void, options: VadStreamOptions = {}, fail: (error: unknown) => void = () => {}) {
    this.#score = score;
    this.#send = send;
    this.#fail = fail;
    this.#probabilities = options.probabilities ?? false;
    this.#maxPending = options.maxPendingFrames ?? 2000;
    this.#maxLagMs = options.maxLagMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
    this.#detector = new SpeechDetector(options.detector);
    this.#finished = new Promise((resolve) => (this.#markFinished = resolve));
  }

  /** Frames scored so far. */
  get framesScored(): number {
    return this.#scored;
  }

  /** Whether the stream takes audio: not ended, not closed. */
  get isOpen(): boolean {
    return !this.#closed && !this.#ending;
  }

  /** Frames received and not scored yet (queued here or being scored). */
  get pendingFrames(): number {
    return this.#queue.length - this.#head + (this.#dueInFlight !== Infinity ? 1 : 0);
  }

  /** How far behind real time scoring is now, in ms: since the oldest frame not yet scored was due (≤ 0 when none is late). */
  get lagMs(): number {
    // The frame being scored is older than any still queued.
    const oldest = this.#dueInFlight !== Infinity ? this.#dueInFlight : this.#head < this.#queue.length ? this.#due[this.#head] : Infinity;
    return oldest === Infinity ? 0 : this.#now() - oldest;
  }

  /** Adds audio (16 kHz samples in [-1, 1]); complete frames are scored in order. */
  push(samples: Float32Array): void {
    if (this.#closed || this.#ending) return;
    const arrived = this.#now();
    for (const frame of this.#cutter.push(samples)) {
      this.#queue.push(frame);
      this.#lastDue = Math.max(arrived, this.#lastDue + FRAME_MS);
      this.#due.push(this.#lastDue);
    }
    if (this.#queue.length - this.#head > this.#maxPending) {
      this.close();
      this.#fail(new Error(`more than ${this.#maxPending} frames are waiting: send audio no faster than the server answers (or in real time)`));
      return;
    }
    if (this.#tooLate()) return;
    void this.#pump();
  }

  /** No more audio: after the last frame, closes an open segment and sends `done`. */
  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    void this.#pump();
  }

  /**
   * Finishes the stream from the server's side (shutdown): takes no more audio, scores the
   * frames already cut, sends their events and `done`. Resolves when the stream is closed.
   */
  drain(): Promise<void> {
    this.end();
    return this.#finished;
  }

  /** The connection went away: drop what is left (a frame still queued in the batcher is withdrawn). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#due = [];
    this.#head = 0;
    this.#dueInFlight = Infinity; // a frame in flight is withdrawn (or finishes unseen)
    this.#closing.abort(new Error('the stream closed'));
    this.#markFinished();
  }

  /** Fails the stream when it is more than `maxLagMs` behind real time. */
  #tooLate(): boolean {
    const lag = this.lagMs;
    if (lag <= this.#maxLagMs) return false;
    this.close();
    this.#fail(StreamOverloadedError.behind(lag, this.#maxLagMs));
    return true;
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (!this.#closed && this.#head < this.#queue.length) {
        if (this.#tooLate()) return;
        this.#dueInFlight = this.#due[this.#head];
        const samples = this.#queue[this.#head++];
        if (this.#head > 1024) this.#compact();
        const { probability, state } = await this.#score({ samples, state: this.#state }, this.#closing.signal);
        this.#dueInFlight = Infinity;
        if (this.#closed) return;
        this.#state = state;
        const frame = this.#scored++;
        if (this.#probabilities) this.#send({ type: 'frame', frame, probability });
        for (const event of this.#detector.push(probability)) this.#send(event);
      }
      if (this.#ending && !this.#closed) {
        for (const event of this.#detector.finish()) this.#send(event);
        this.#send({ type: 'done', frames: this.#scored });
        this.close();
      }
    } catch (error) {
      if (this.#closed) return; // closed meanwhile: its frame was withdrawn, nobody is told twice
      this.close();
      this.#fail(error);
    } finally {
      this.#busy = false;
    }
  }

  #compact(): void {
    this.#queue = this.#queue.slice(this.#head);
    this.#due = this.#due.slice(this.#head);
    this.#head = 0;
  }
}
