/**
 * The server side of scenario 8, in a process of its own (started by `bench/http/overload.ts`
 * through `node --import tsx`, with an IPC channel; not compiled with the rest of the bench):
 *
 * - `recipe`: `examples/http-server` as a user would run it (Silero VAD, its defaults, with the
 *   options in the JSON argument);
 * - `floor`: fastify answering every `POST /vad` with the same 503 from its onRequest hook,
 *   before the body: the least any server can do per request, so what this machine can answer.
 *
 * Messages to the parent: `{ type: 'ready', url, batchMs }` once listening (the recipe also
 * times its model on full batches first), `{ type: 'rss', mb }` every 100 ms, and on `'report'`
 * `{ type: 'report', … }` with CPU time, event-loop use, peak RSS and the server's own counters.
 * `'stop'` shuts it down and exits.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { startHttpModelServer, type HttpModelServerOptions } from '../../examples/http-server/server';
import { INPUT_SAMPLES, initialSileroState, loadSileroVad } from '../../examples/models';
import { loadSileroVadInThread } from '../../examples/models/sileroVadThread';
import type { ServerMessage, ServerProcessConfig } from './protocol';

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{"server":"recipe"}') as ServerProcessConfig;
  const send = (message: ServerMessage): void => void process.send?.(message);
  let report: () => Record<string, number | boolean>;
  let stop: () => Promise<void>;
  let app: FastifyInstance;
  let url: string;
  let batchMs = 0;
  const maxBatchSize = config.options?.maxBatchSize ?? 64; // the recipe's default
  if (config.server === 'floor') {
    app = Fastify({ logger: false });
    const body = JSON.stringify({ error: 'the server is at capacity; retry after 1 s' });
    app.addHook('onRequest', (_request, reply) => void reply.code(503).header('retry-after', '1').type('application/json; charset=utf-8').send(body));
    app.post('/vad', async () => ({}));
    await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    report = () => ({});
    stop = () => app.close();
  } else {
    const vad = config.thread === true ? await loadSileroVadInThread() : await loadSileroVad();
    batchMs = await timeFullBatches(vad, maxBatchSize);
    const server = await startHttpModelServer({ ...(config.options as HttpModelServerOptions | undefined), model: vad });
    app = server.app;
    url = server.url;
    report = () => {
      const { meanBatchSize, batches, succeeded, timedOut, rejected, cancelled } = server.stats();
      const door = server.doorStats();
      return { meanBatchSize, batches, succeeded, timedOut, rejected, cancelled, ...door };
    };
    stop = async () => {
      await server.shutdown();
      await vad.close();
    };
  }
  const sinceArrival = timeAnswers(app);
  const cpuAtStart = process.cpuUsage();
  const eluAtStart = performance.eventLoopUtilization();
  const rss = setInterval(() => send({ type: 'rss', mb: process.memoryUsage().rss / 2 ** 20 }), 100);
  process.on('message', (message: unknown) => {
    if (message === 'report') {
      const cpu = process.cpuUsage(cpuAtStart);
      send({
        type: 'report',
        cpuMs: (cpu.user + cpu.system) / 1000,
        eventLoopUtilization: performance.eventLoopUtilization(eluAtStart).utilization,
        peakRssMb: process.resourceUsage().maxRSS / 1024,
        counters: { ...report(), ...sinceArrival() },
      });
    } else if (message === 'stop') {
      clearInterval(rss);
      void stop().finally(() => process.exit(0));
    }
  });
  process.once('disconnect', () => process.exit(0)); // the parent died: do not linger
  send({ type: 'ready', url, batchMs, maxBatchSize });
}

/**
 * Times every answer on the server's side, from the request's arrival (Node's `request` event:
 * its headers read) to its last byte handed to the kernel, by status. What is left of what a
 * client saw was spent before arrival: in the kernel's queues and the client's.
 */
function timeAnswers(app: FastifyInstance): () => Record<string, number> {
  const byStatus = new Map<number, number[]>();
  app.server.on('request', (_request: IncomingMessage, response: ServerResponse) => {
    const arrived = performance.now();
    response.once('finish', () => {
      const list = byStatus.get(response.statusCode) ?? [];
      list.push(performance.now() - arrived);
      byStatus.set(response.statusCode, list);
    });
  });
  return () => {
    const out: Record<string, number> = {};
    for (const [status, list] of byStatus) {
      list.sort((a, b) => a - b);
      out[`arrivalToAnswerP50Ms${status}`] = list[Math.floor(0.5 * (list.length - 1))];
      out[`arrivalToAnswerP99Ms${status}`] = list[Math.ceil(0.99 * list.length) - 1];
    }
    return out;
  };
}

/** The model alone on full batches, after a warm-up: the median time of one batch, in ms. */
async function timeFullBatches(vad: Awaited<ReturnType<typeof loadSileroVad>>, size: number): Promise<number> {
  const frame = { samples: new Float32Array(INPUT_SAMPLES).fill(0.01), state: initialSileroState() };
  const batch = Array.from({ length: size }, () => frame);
  for (let i = 0; i < 5; i++) await vad.runBatch(batch);
  const times: number[] = [];
  for (let i = 0; i < 21; i++) {
    const start = performance.now();
    await vad.runBatch(batch);
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[10];
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
