import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { Batcher } from 'rx-batcher';
import { FRAME_SAMPLES, loadSileroVad, type SileroFrame, type SileroResult, type SileroVad } from '../models';
import { OVERLOADED_CLOSE_CODE, decodePcm16, type VadMessage } from './protocol';
import type { DetectorOptions } from './speechDetector';
import { StreamShedder } from './streamShedder';
import { StreamOverloadedError, VadStream, type ScoreFrame } from './vadStream';

/**
 * Options of {@link startVadServer}.
 *
 * @example
 * ```ts
 * const options: VadServerOptions = { port: 0, batching: true, maxBatchSize: 64, maxDelayMs: 2 };
 * ```
 */
export interface VadServerOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** Batch frames of all streams through one `Batcher` (true), or run each frame alone (false). @default true */
  readonly batching?: boolean;
  /** The most frames per model call. @default 64 */
  readonly maxBatchSize?: number;
  /** How long a frame may wait for companions. @default 2 */
  readonly maxDelayMs?: number;
  /** A model to share (the server does not close it); by default the server loads and owns one. */
  readonly vad?: SileroVad;
  /** Hysteresis rules for speech events. */
  readonly detector?: DetectorOptions;
  /** Per connection, frames allowed to wait for scoring before the stream is failed. @default 2000 */
  readonly maxPendingFrames?: number;
  /**
   * How far behind real time a stream's scoring may fall before the server tells the client
   * (`overloaded`) and closes it with 1013. @default 1000
   */
  readonly maxLagMs?: number;
  /** The clock lag is measured on, in ms (tests pass their own). @default performance.now */
  readonly now?: () => number;
}

/**
 * Counters of a running {@link VadServer}.
 *
 * @example
 * ```ts
 * const { frames, modelCalls } = server.stats();
 * ```
 */
export interface VadServerStats {
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Frames scored. */
  readonly frames: number;
  /** Model calls made (one per batch, or one per frame without batching). */
  readonly modelCalls: number;
  /** frames / modelCalls. */
  readonly meanBatchSize: number;
  /** Frames received and not scored yet, over all streams. */
  readonly pendingFrames: number;
  /** Streams told `overloaded` and closed (1013) so far. */
  readonly overloaded: number;
}

/**
 * A running streaming VAD server.
 *
 * @example
 * ```ts
 * const server = await startVadServer();
 * console.log(server.url); // ws://127.0.0.1:PORT
 * await server.close();
 * ```
 */
export interface VadServer {
  /** Where clients connect, e.g. `ws://127.0.0.1:40123`. */
  readonly url: string;
  readonly port: number;
  readonly batching: boolean;
  stats(): VadServerStats;
  /**
   * Graceful close: refuses new connections, lets every stream score the audio it already sent
   * (events and `done` are still delivered), closes each connection with 1001, stops the
   * batcher (draining), and frees an owned model.
   */
  close(): Promise<void>;
}

/**
 * Starts the streaming VAD server: each WebSocket client streams 16 kHz PCM (see
 * `protocol.ts`); frames of all clients are scored by Silero VAD v6 through one `Batcher`,
 * and each client receives `speech-start` / `speech-end` events as they happen.
 *
 * @example
 * ```ts
 * const server = await startVadServer({ port: 0, batching: true });
 * const { events } = await streamAudio(server.url, clip.samples);
 * await server.close();
 * ```
 */
export async function startVadServer(options: VadServerOptions = {}): Promise<VadServer> {
  const batching = options.batching ?? true;
  const ownsModel = options.vad === undefined;
  const vad = options.vad ?? (await loadSileroVad());
  let frames = 0;
  let modelCalls = 0;
  let overloaded = 0;
  // Connections so far: each stream's frames rank by its age in the batcher (older first).
  let opened = 0;
  const maxLagMs = options.maxLagMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  // Lets the newest streams go when the server cannot keep them all in real time.
  const shedder = new StreamShedder<VadStream>({ maxLagMs, now });
  const runBatch = (batch: readonly SileroFrame[]): Promise<SileroResult[]> => {
    modelCalls++;
    frames += batch.length;
    shedder.scored(batch.length);
    return vad.runBatch(batch);
  };
  const batcher = batching
    ? new Batcher<SileroFrame, SileroResult>({ name: 'vad', runBatch, maxBatchSize: options.maxBatchSize ?? 64, maxDelayMs: options.maxDelayMs ?? 2 })
    : undefined;
  // Older streams first: under overload the newest fall behind and are told, the rest stay in
  // real time. (One priority level per stream; aging lifts a waiting frame one level a second.)
  const scoreFor = (priority: number): ScoreFrame =>
    batcher ? (frame, signal) => batcher.run(frame, { signal, priority }) : async (frame) => (await runBatch([frame]))[0];

  const http = createServer((_request, response) => {
    response.writeHead(426, { 'content-type': 'text/plain' }).end('This is a WebSocket server: connect with ws://, stream 16 kHz 16-bit PCM.\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: 1 << 20 });
  const streams = new Map<WebSocket, VadStream>();
  /** How to tell each stream to go (its socket's `fail`). */
  const tellers = new Map<VadStream, (error: unknown) => void>();

  wss.on('connection', (socket, request) => {
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const send = (message: VadMessage) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    const fail = (error: unknown) => {
      if (error instanceof StreamOverloadedError) {
        overloaded++;
        send({ type: 'overloaded', lagMs: Math.round(error.lagMs), message: error.message });
        socket.close(OVERLOADED_CLOSE_CODE, 'try again later');
        return;
      }
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      socket.close(1011, 'cannot serve this stream');
    };
    // At the door: while streams are being let go, a new one would only add to the load.
    if (shedder.refusing) return fail(StreamOverloadedError.refused());
    const probabilities = query.get('probabilities');
    const stream = new VadStream(
      scoreFor(-opened++),
      send,
      {
        probabilities: probabilities === '1' || probabilities === 'true',
        detector: options.detector,
        maxPendingFrames: options.maxPendingFrames,
        maxLagMs,
        now,
      },
      fail,
    );
    streams.set(socket, stream);
    tellers.set(stream, fail);
    shedder.add(stream);
    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) {
          const samples = decodePcm16(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer));
          if (stream.isOpen) shedder.arrived(samples.length / FRAME_SAMPLES);
          stream.push(samples);
          for (const newest of shedder.check()) {
            const lagMs = newest.lagMs;
            newest.close();
            tellers.get(newest)?.(StreamOverloadedError.shed(lagMs));
          }
        } else if (isEndMessage(String(data))) {
          stream.end();
        } else {
          throw new Error('unknown text message: the only one is {"type":"end"}; send audio as binary 16-bit PCM');
        }
      } catch (error) {
        stream.close();
        fail(error);
      }
    });
    socket.on('close', () => {
      stream.close();
      streams.delete(socket);
      tellers.delete(stream);
      shedder.remove(stream);
    });
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const { port } = http.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';

  let closing: Promise<void> | undefined;
  return {
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    batching,
    stats: () => {
      let pendingFrames = 0;
      for (const stream of streams.values()) pendingFrames += stream.pendingFrames;
      return { connections: streams.size, frames, modelCalls, meanBatchSize: modelCalls === 0 ? 0 : frames / modelCalls, pendingFrames, overloaded };
    },
    close: () =>
      (closing ??= (async () => {
        // Refuse new connections, then let every stream score the frames it already has and
        // send their events and `done`, and close it with 1001 (going away).
        const listening = new Promise<void>((resolve, reject) => http.close((error) => (error ? reject(error) : resolve())));
        await Promise.all([...streams].map(([socket, stream]) => stream.drain().then(() => goAway(socket))));
        await batcher?.stop({ drain: true });
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await listening;
        if (ownsModel) await vad.close();
      })()),
  };
}

/** Closes a socket with 1001, cutting it off if the client does not complete the close handshake soon. */
function goAway(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const cutOff = setTimeout(() => socket.terminate(), 1000);
    socket.once('close', () => {
      clearTimeout(cutOff);
      resolve();
    });
    socket.close(1001, 'server shutting down');
  });
}

function isEndMessage(text: string): boolean {
  try {
    return (JSON.parse(text) as { type?: unknown } | null)?.type === 'end';
  } catch {
    return false;
  }
}
