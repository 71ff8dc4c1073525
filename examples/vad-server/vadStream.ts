import { FrameCutter, initialSileroState, type SileroFrame, type SileroResult } from '../models';
import type { VadMessage } from './protocol';
import { SpeechDetector, type DetectorOptions } from './speechDetector';

/**
 * Scores one frame of one stream: straight through the model, or through a shared `Batcher`.
 *
 * @example
 * ```ts
 * const score: ScoreFrame = (frame) => batcher.run(frame);
 * ```
 */
export type ScoreFrame = (frame: SileroFrame) => Promise<SileroResult>;

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
  readonly #cutter = new FrameCutter();
  readonly #detector: SpeechDetector;
  /** Frames cut but not scored yet; `#head` is the next one. */
  #queue: Float32Array[] = [];
  #head = 0;
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
    this.#detector = new SpeechDetector(options.detector);
    this.#finished = new Promise((resolve) => (this.#markFinished = resolve));
  }

  /** Frames scored so far. */
  get framesScored(): number {
    return this.#scored;
  }

  /** Adds audio (16 kHz samples in [-1, 1]); complete frames are scored in order. */
  push(samples: Float32Array): void {
    if (this.#closed || this.#ending) return;
    for (const frame of this.#cutter.push(samples)) this.#queue.push(frame);
    if (this.#queue.length - this.#head > this.#maxPending) {
      this.close();
      this.#fail(new Error(`more than ${this.#maxPending} frames are waiting: send audio no faster than the server answers (or in real time)`));
      return;
    }
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

  /** The connection went away: drop what is left (a frame in flight finishes unseen). */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
    this.#markFinished();
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (!this.#closed && this.#head < this.#queue.length) {
        const samples = this.#queue[this.#head++];
        if (this.#head > 1024) this.#compact();
        const { probability, state } = await this.#score({ samples, state: this.#state });
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
      this.close();
      this.#fail(error);
    } finally {
      this.#busy = false;
    }
  }

  #compact(): void {
    this.#queue = this.#queue.slice(this.#head);
    this.#head = 0;
  }
}
