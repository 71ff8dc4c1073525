import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Tracks a server's connections and which of them are answering a request, so a graceful
 * shutdown can close every connection that is not: keep-alive sockets waiting between requests,
 * and sockets a client opened but never used (HTTP clients such as undici pre-open one after an
 * aborted request). Node's own `server.close()` leaves the latter open until the client gives
 * up, which would hold the shutdown for seconds.
 *
 * @example
 * ```ts
 * const connections = trackConnections(app.server);
 * // on shutdown, after the last queued request was answered:
 * connections.closeIdle();
 * ```
 */
export function trackConnections(server: Server): { closeIdle(): void } {
  const busy = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    busy.set(socket, 0);
    socket.once('close', () => busy.delete(socket));
  });
  server.on('request', (request, response) => {
    const socket = request.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    response.once('close', () => {
      if (busy.has(socket)) busy.set(socket, busy.get(socket)! - 1);
    });
  });
  return {
    closeIdle: () => {
      for (const [socket, requests] of busy) if (requests === 0) socket.destroy();
    },
  };
}
