import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for fault tests: clients connect to `url`'s port, the proxy forwards to the
 * broker. It can cut every connection at once (both sides see a reset), add latency in each
 * direction, and black-hole for a while (nothing is forwarded and new connections are held,
 * as in a network partition; afterwards what was held flows on, as TCP would retransmit it).
 *
 * @example
 * ```ts
 * const proxy = await startProxy({ path: broker.url });      // Redis on a unix socket
 * const transport = redisTransport({ url: proxy.url('redis') });
 * proxy.cut();                  // every connection reset
 * proxy.setLatency(50);         // 50 ms each way from now on
 * await proxy.blackhole(1000);  // a one-second partition
 * await proxy.close();
 * ```
 */
export interface TcpProxy {
  /** `redis://127.0.0.1:port` or `nats://127.0.0.1:port`. */
  url(scheme: 'redis' | 'nats'): string;
  /** Connections open now (client side). */
  readonly connections: number;
  /** How many times `cut()` found connections to reset, in all. */
  readonly cutConnections: number;
  /** Resets every open connection, both ways; new connections are accepted as before. */
  cut(): void;
  /**
   * Resets the next new connection when the client first answers the broker (what it sends
   * is not forwarded): a connection dropped midway through its handshake (NATS: the client
   * has the server's INFO and waits for the PONG that ends its handshake).
   */
  cutNextAfterGreeting(): void;
  /** Delays every chunk by `ms` in each direction (0: none). */
  setLatency(ms: number): void;
  /** Forwards nothing and connects nothing for `ms`; then lets everything held through. */
  blackhole(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Where the proxy forwards to: a unix socket path, or a TCP port on 127.0.0.1. */
export type Upstream = { path: string } | { port: number };

interface Pair {
  client: Socket;
  server: Socket | undefined;
  /** To be reset when the client first sends something after the broker's first chunk reached it. */
  cutAfterGreeting: boolean;
  /** The broker's first chunk was forwarded to the client. */
  greeted: boolean;
}

export async function startProxy(upstream: Upstream): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let latencyMs = 0;
  let cutConnections = 0;
  /** While black-holed: resolves when the hole ends. */
  let hole: Promise<void> | undefined;

  /** The next new connection is to be reset after its greeting. */
  let cutNextAfterGreeting = false;

  /** Resets both sides of a connection. */
  const reset = (pair: Pair): void => {
    cutConnections++;
    pairs.delete(pair);
    pair.client.resetAndDestroy();
    // A unix socket has no reset: close it.
    if ('path' in upstream) pair.server?.destroy();
    else pair.server?.resetAndDestroy();
  };

  /** Forwards `from` to `to` in order, each chunk after the latency and after any black hole, unless `forward` says no. */
  const pipe = (from: Socket, to: () => Socket | undefined, forward: () => boolean = () => true): void => {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      // Due at arrival + latency, in order: latency delays each chunk, it does not add up.
      const due = Date.now() + latencyMs;
      chain = chain.then(async () => {
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        while (hole !== undefined) await hole;
        const target = to();
        if (target !== undefined && !target.destroyed && forward()) target.write(chunk);
      });
    });
  };

  const server: Server = createServer((client) => {
    const pair: Pair = { client, server: undefined, cutAfterGreeting: cutNextAfterGreeting, greeted: false };
    cutNextAfterGreeting = false;
    pairs.add(pair);
    client.setNoDelay(true);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      pair.server?.destroy();
    };
    client.on('error', drop);
    client.on('close', drop);
    pipe(client, () => pair.server, () => {
      if (!pair.cutAfterGreeting || !pair.greeted) return true;
      reset(pair); // the client answered the greeting: drop the answer and the connection
      return false;
    });
    void (async () => {
      while (hole !== undefined) await hole;
      if (client.destroyed) return;
      const s = 'path' in upstream ? connect(upstream.path) : connect(upstream.port, '127.0.0.1');
      s.setNoDelay(true);
      pair.server = s;
      s.on('error', drop);
      s.on('close', drop);
      pipe(s, () => (client.destroyed ? undefined : client), () => (pair.greeted = true));
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    get cutConnections() {
      return cutConnections;
    },
    cut() {
      for (const pair of [...pairs]) reset(pair);
    },
    cutNextAfterGreeting() {
      cutNextAfterGreeting = true;
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    async blackhole(ms) {
      let end!: () => void;
      hole = new Promise<void>((resolve) => (end = resolve));
      await sleep(ms);
      hole = undefined;
      end();
    },
    async close() {
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.server?.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
