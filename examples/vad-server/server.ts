import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { Batcher } from 'rx-batcher';
import { loadSileroVad, type SileroFrame, type SileroResult, type SileroVad } from '../models';
import { decodePcm16, type VadMessage } from './protocol';
import type { DetectorOptions } from './speechDetector';
import { VadStream, type ScoreFrame } from './vadStream';

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
  const runBatch = (batch: readonly SileroFrame[]): Promise<SileroResult[]> => {
    modelCalls++;
    frames += batch.length;
    return vad.runBatch(batch);
  };
  const batcher = batching
    ? new Batcher<SileroFrame, SileroResult>({ name: 'vad', runBatch, maxBatchSize: options.maxBatchSize ?? 64, maxDelayMs: options.maxDelayMs ?? 2 })
    : undefined;
  const score: ScoreFrame = batcher ? (frame) => batcher.run(frame) : async (frame) => (await runBatch([frame]))[0];

  const http = createServer((_request, response) => {
    response.writeHead(426, { 'content-type': 'text/plain' }).end('This is a WebSocket server: connect with ws://, stream 16 kHz 16-bit PCM.\n');
  });
  const wss = new WebSocketServer({ server: http, maxPayload: 1 << 20 });
  const streams = new Map<WebSocket, VadStream>();

  wss.on('connection', (socket, request) => {
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const send = (message: VadMessage) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    const fail = (error: unknown) => {
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      socket.close(1011, 'cannot serve this stream');
    };
    const probabilities = query.get('probabilities');
    const stream = new VadStream(score, send, { probabilities: probabilities === '1' || probabilities === 'true', detector: options.detector, maxPendingFrames: options.maxPendingFrames }, fail);
    streams.set(socket, stream);
    socket.on('message', (data, isBinary) => {
      try {
        if (isBinary) {
          stream.push(decodePcm16(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer)));
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
    stats: () => ({ connections: streams.size, frames, modelCalls, meanBatchSize: modelCalls === 0 ? 0 : frames / modelCalls }),
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
