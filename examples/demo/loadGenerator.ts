import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePcm16 } from '../vad-server/protocol';
import { VadClient } from '../vad-server/client';
import { readWav } from '../speech/wav';

/** Samples per frame the server scores (Silero: 512 at 16 kHz). */
const FRAME_SAMPLES = 512;

/**
 * What the simulated streams measured.
 *
 * @example
 * ```ts
 * const { latencies, seconds } = await runStreams(url, { streams: 8, durationMs: 500 });
 * ```
 */
export interface LoadReport {
  /** Per frame, from sending it to receiving its probability, in ms, sorted ascending. */
  readonly latencies: Float64Array;
  /** How long the streams ran. */
  readonly seconds: number;
}

/**
 * Options of {@link runStreams}.
 *
 * @example
 * ```ts
 * const options: StreamsOptions = { streams: 64, durationMs: 4000 };
 * ```
 */
export interface StreamsOptions {
  readonly streams: number;
  /** Each stream stops sending once this long has passed. @default Infinity */
  readonly durationMs?: number;
  /** Each stream stops after this many frames were answered (tests use it: the counts are then exact). @default Infinity */
  readonly framesPerStream?: number;
  /** Called about every 250 ms, and once at the end, with the frames answered so far. */
  readonly onProgress?: (frames: number, elapsedMs: number) => void;
}

/**
 * Simulated audio streams: `streams` WebSocket connections, each sending the speech clip one
 * 32 ms frame (16-bit PCM, as a microphone delivers it) at a time and the next frame as soon
 * as the previous one's probability comes back, until `durationMs` has passed or it has sent
 * `framesPerStream` frames. Each stream starts at a different point of the clip and loops it.
 *
 * @example
 * ```ts
 * const report = await runStreams(server.url, { streams: 64, durationMs: 4000 });
 * console.log(report.latencies.length / report.seconds, 'frames/s');
 * ```
 */
export async function runStreams(url: string, options: StreamsOptions): Promise<LoadReport> {
  const clip = readWav(readFileSync(join(__dirname, '..', 'speech', 'speech-16k.wav'))).samples;
  const frames = Array.from({ length: Math.floor(clip.length / FRAME_SAMPLES) }, (_, i) => encodePcm16(clip.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)));
  const clients = await Promise.all(Array.from({ length: options.streams }, () => VadClient.connect(url, { probabilities: true })));
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + (options.durationMs ?? Infinity);
  const framesPerStream = options.framesPerStream ?? Infinity;
  const progress = setInterval(() => options.onProgress?.(latencies.length, performance.now() - start), 250);
  try {
    await Promise.all(
      clients.map(
        (client, index) =>
          new Promise<void>((resolve, reject) => {
            let position = Math.floor((index * frames.length) / clients.length);
            let answered = 0;
            let sentAt = 0;
            const sendNext = () => {
              sentAt = performance.now();
              client.sendPcm(frames[position++ % frames.length]);
            };
            const stop = client.onMessage((message) => {
              if (message.type === 'error') reject(new Error(`stream ${index}: ${message.message}`));
              if (message.type !== 'frame') return;
              const now = performance.now();
              latencies.push(now - sentAt);
              if (++answered < framesPerStream && now < end) return sendNext();
              stop();
              resolve();
            });
            void client.closed.then((code) => reject(new Error(`stream ${index} closed unexpectedly (code ${code})`)));
            sendNext();
          }),
      ),
    );
  } finally {
    clearInterval(progress);
    await Promise.all(clients.map((client) => client.close()));
  }
  const elapsedMs = performance.now() - start;
  options.onProgress?.(latencies.length, elapsedMs);
  return { latencies: Float64Array.from(latencies).sort(), seconds: elapsedMs / 1000 };
}

/**
 * What live streams saw of a server offered more than it can serve.
 *
 * @example
 * ```ts
 * const { kept, told } = await runLiveStreams(url, { streams: 80, durationMs: 4000 });
 * ```
 */
export interface LiveReport {
  readonly streams: number;
  /** Streams served to the end (never told `overloaded`). */
  readonly kept: number;
  /** For each stream told `overloaded` (and closed with 1013): when, in ms from its first frame; sorted. */
  readonly toldAfterMs: Float64Array;
  /** Which streams were told, by the order they connected in (0: the oldest); sorted. */
  readonly toldStreams: number[];
  /** Per frame of the kept streams, from sending it to receiving its probability, in ms, sorted. */
  readonly latencies: Float64Array;
  /** How long the streams ran. */
  readonly seconds: number;
}

/**
 * Live audio streams, as microphones send it: `streams` WebSocket connections (opened in
 * order, so the first is the oldest), each sending one 32 ms frame of the speech clip every
 * 32 ms for `durationMs`, whether or not earlier frames were answered (an open loop), then
 * `end`. A stream the server tells `overloaded` stops there. Reports how many streams were
 * kept to the end, when the others were told, and the kept streams' latency per frame.
 *
 * @example
 * ```ts
 * const report = await runLiveStreams(server.url, { streams: 80, durationMs: 4000 });
 * console.log(`${report.kept} kept, ${report.toldAfterMs.length} told to try again later`);
 * ```
 */
export async function runLiveStreams(url: string, options: StreamsOptions): Promise<LiveReport> {
  const clip = readWav(readFileSync(join(__dirname, '..', 'speech', 'speech-16k.wav'))).samples;
  const frames = Array.from({ length: Math.floor(clip.length / FRAME_SAMPLES) }, (_, i) => encodePcm16(clip.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)));
  const clients: VadClient[] = [];
  for (let i = 0; i < options.streams; i++) clients.push(await VadClient.connect(url, { probabilities: true }));
  const frameMs = (FRAME_SAMPLES * 1000) / 16_000;
  const durationMs = options.durationMs ?? 4000;
  const keptLatencies: number[][] = [];
  const toldAfterMs: number[] = [];
  const toldStreams: number[] = [];
  let answered = 0;
  const start = performance.now();
  const progress = setInterval(() => options.onProgress?.(answered, performance.now() - start), 250);
  try {
    await Promise.all(
      clients.map(
        (client, index) =>
          new Promise<void>((resolve, reject) => {
            const sentAt: number[] = [];
            const latencies: number[] = [];
            let startedAt = 0;
            let ticker: NodeJS.Timeout | undefined;
            const send = () => {
              sentAt.push(performance.now());
              client.sendPcm(frames[(index + sentAt.length) % frames.length]);
              if (performance.now() - start >= durationMs) {
                clearInterval(ticker);
                client.end().then(() => {
                  keptLatencies.push(latencies);
                  resolve();
                }, reject);
              }
            };
            client.onMessage((message) => {
              if (message.type === 'frame') {
                latencies.push(performance.now() - sentAt[message.frame]);
                answered++;
              } else if (message.type === 'overloaded') {
                clearInterval(ticker);
                toldAfterMs.push(performance.now() - startedAt);
                toldStreams.push(index);
                resolve();
              } else if (message.type === 'error') {
                clearInterval(ticker);
                reject(new Error(`stream ${index}: ${message.message}`));
              }
            });
            // Staggered starts, so the frames of all streams do not arrive in one burst.
            setTimeout(() => {
              startedAt = performance.now();
              send();
              ticker = setInterval(send, frameMs);
            }, (index * frameMs) / clients.length);
          }),
      ),
    );
  } finally {
    clearInterval(progress);
    await Promise.all(clients.map((client) => client.close()));
  }
  const elapsedMs = performance.now() - start;
  options.onProgress?.(answered, elapsedMs);
  return {
    streams: options.streams,
    kept: keptLatencies.length,
    toldAfterMs: Float64Array.from(toldAfterMs).sort(),
    toldStreams: toldStreams.sort((a, b) => a - b),
    latencies: Float64Array.from(keptLatencies.flat()).sort(),
    seconds: elapsedMs / 1000,
  };
}
