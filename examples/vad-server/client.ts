import WebSocket from 'ws';
import { encodePcm16, type DoneMessage, type OverloadedMessage, type SpeechEvent, type VadMessage } from './protocol';

/**
 * A client of the streaming VAD server: one connection, one audio stream. It collects speech
 * events (and frame probabilities when asked for) as they arrive.
 *
 * @example
 * ```ts
 * const client = await VadClient.connect(server.url);
 * client.send(samples);            // 16 kHz, any chunk size
 * await client.end();              // every frame scored
 * console.log(client.events);      // [{ type: 'speech-start', sample, time }, …]
 * await client.close();
 * ```
 */
export class VadClient {
  /** Speech events received so far, in order. */
  readonly events: SpeechEvent[] = [];
  /** Frame probabilities received so far (with `probabilities: true`), by frame number. */
  readonly probabilities: number[] = [];
  /** Resolves with the close code when the connection closes, from either side. */
  readonly closed: Promise<number>;
  /** Set when the server told this stream to go (`overloaded`, then close code 1013), even right as it connected. */
  overloaded: OverloadedMessage | undefined;
  readonly #socket: WebSocket;
  readonly #listeners = new Set<(message: VadMessage) => void>();
  #done: Promise<DoneMessage> | undefined;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', (code) => resolve(code)));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as VadMessage;
      if (message.type === 'speech-start' || message.type === 'speech-end') this.events.push(message);
      else if (message.type === 'frame') this.probabilities[message.frame] = message.probability;
      else if (message.type === 'overloaded') this.overloaded = message;
      for (const listener of this.#listeners) listener(message);
    });
  }

  /**
   * Opens a connection. With `probabilities: true` the server also sends every frame's
   * probability (the demo uses them to time each frame).
   */
  static connect(url: string, options: { readonly probabilities?: boolean } = {}): Promise<VadClient> {
    const socket = new WebSocket(options.probabilities ? `${url}/?probabilities=1` : url);
    return new Promise((resolve, reject) => {
      socket.once('open', () => {
        socket.off('error', reject);
        resolve(new VadClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Calls `listener` with every message the server sends; returns a function that stops it. */
  onMessage(listener: (message: VadMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sends audio: 16 kHz samples in [-1, 1]. */
  send(samples: Float32Array): void {
    this.#socket.send(encodePcm16(samples));
  }

  /** Sends audio already encoded as 16-bit little-endian PCM (see {@link encodePcm16}). */
  sendPcm(pcm: Buffer): void {
    this.#socket.send(pcm);
  }

  /** Says the audio is over; resolves with `done` once every frame is scored. */
  end(): Promise<DoneMessage> {
    this.#done ??= new Promise<DoneMessage>((resolve, reject) => {
      const onClose = (code: number) => reject(new Error(`the VAD server closed the stream (code ${code}) before it was done`));
      const stop = this.onMessage((message) => {
        if (message.type === 'done') resolve(message);
        else if (message.type === 'error') reject(new Error(`the VAD server failed: ${message.message}`));
        else if (message.type === 'overloaded') reject(new Error(`the VAD server is overloaded: ${message.message}`));
        else return;
        stop();
        this.#socket.off('close', onClose);
      });
      this.#socket.once('close', onClose);
      this.#socket.send(JSON.stringify({ type: 'end' }));
    });
    return this.#done;
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    if (this.#socket.readyState !== WebSocket.CLOSED && this.#socket.readyState !== WebSocket.CLOSING) this.#socket.close();
    await this.closed;
  }
}

/**
 * Streams a whole clip to the server in chunks and returns what came back.
 *
 * @example
 * ```ts
 * const { events } = await streamAudio(server.url, clip.samples);
 * ```
 */
export async function streamAudio(
  url: string,
  samples: Float32Array,
  options: { readonly chunkSamples?: number; readonly probabilities?: boolean } = {},
): Promise<{ events: SpeechEvent[]; probabilities: number[]; frames: number }> {
  const client = await VadClient.connect(url, { probabilities: options.probabilities });
  try {
    const chunk = options.chunkSamples ?? 1600; // 100 ms
    for (let offset = 0; offset < samples.length; offset += chunk) client.send(samples.subarray(offset, offset + chunk));
    const { frames } = await client.end();
    return { events: [...client.events], probabilities: [...client.probabilities], frames };
  } finally {
    await client.close();
  }
}
