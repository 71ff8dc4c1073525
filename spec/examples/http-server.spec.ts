/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
import { Readable } from 'node:stream';
import { firstValueFrom, filter } from 'rxjs';
import { Pool, request } from 'undici';
import { BINARY_TYPE, frameToBinary, resultFromBinary } from '../../examples/http-server/codec';
import { startHttpModelServer, type HttpModelServer } from '../../examples/http-server/server';
import { INPUT_SAMPLES, framesOf, initialSileroState, loadSileroVad, type SileroFrame, type SileroResult, type SileroVad } from '../../examples/models';
import { loadSpeechClip } from '../../examples/speech/clip';
import { deferred, waitFor } from './helpers-wait';

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function post(url: string, frame: { samples: Float32Array; state?: Float32Array }, signal?: AbortSignal) {
  return request(`${url}/vad`, { method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frame), signal });
}

/** A model that records every frame it receives and holds each batch until `release()`. */
function gatedModel(vad: SileroVad) {
  const seen: SileroFrame[] = [];
  let gate = deferred<void>();
  return {
    seen,
    release: () => gate.resolve(),
    hold: () => (gate = deferred<void>()),
    runBatch: async (frames: readonly SileroFrame[]): Promise<SileroResult[]> => {
      seen.push(...frames);
      await gate.promise;
      return vad.runBatch(frames);
    },
  };
}

describe('examples/http-server: batched model server over real HTTP', () => {
  let vad: SileroVad;
  /** Frames of real speech (half of them continuing a stream, so with a state) and their unbatched answers. */
  let frames: { samples: Float32Array; state?: Float32Array }[];
  let expected: SileroResult[];

  beforeAll(async () => {
    vad = await loadSileroVad();
    const speech = framesOf(loadSpeechClip().samples).slice(40, 56);
    let state = initialSileroState();
    frames = [];
    for (const [i, samples] of speech.entries()) {
      frames.push(i % 2 === 0 ? { samples } : { samples, state });
      state = (await vad.runOne({ samples, state })).state;
    }
    expected = [];
    for (const frame of frames) expected.push(await vad.runOne({ samples: frame.samples, state: frame.state ?? initialSileroState() }));
  });
  afterAll(() => vad.close());

  it('answers JSON and binary frames with the probability and state of an unbatched run, and 400 for a bad body', async () => {
    const server = await startHttpModelServer({ model: vad });
    try {
      const json = await request(`${server.url}/vad`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ samples: Array.from(frames[1].samples), state: Array.from(frames[1].state!) }),
      });
      expect(json.statusCode).toBe(200);
      const answer = (await json.body.json()) as { probability: number; state: number[] };
      expect(Math.abs(answer.probability - expected[1].probability)).toBeLessThan(1e-4);
      expect(maxAbsDiff(answer.state, expected[1].state)).toBeLessThan(1e-4);

      const binary = await post(server.url, frames[0]);
      expect(binary.headers['content-type']).toBe(BINARY_TYPE);
      const decoded = resultFromBinary(Buffer.from(await binary.body.arrayBuffer()));
      expect(decoded.probability).toBe(expected[0].probability);
      expect(maxAbsDiff(decoded.state, expected[0].state)).toBe(0);

      const bad = await request(`${server.url}/vad`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"samples":[1,2,3]}' });
      expect(bad.statusCode).toBe(400);
      expect(((await bad.body.json()) as { error: string }).error).toMatch(/`samples` must be an array of 576 finite numbers/);
      const broken = await request(`${server.url}/vad`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"samples":' });
      expect(broken.statusCode).toBe(400);
      expect(await broken.body.json()).toEqual({ error: "Body is not valid JSON but content-type is set to 'application/json'" });
      const short = await request(`${server.url}/vad`, { method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: Buffer.alloc(12) });
      expect(short.statusCode).toBe(400);
      expect(((await short.body.json()) as { error: string }).error).toMatch(/^a binary frame is 576 float32 samples .* got 12 bytes$/);
    } finally {
      await server.shutdown();
    }
  });

  it('with modelOnThread the server loads its own model on a worker thread, answers as the event-loop model does', async () => {
    const server = await startHttpModelServer({ modelOnThread: true, maxEventLoopDelayMs: 0 });
    try {
      const answers = await Promise.all(frames.slice(0, 6).map((frame) => post(server.url, frame)));
      for (const [i, answer] of answers.entries()) {
        expect(answer.statusCode).toBe(200);
        const decoded = resultFromBinary(Buffer.from(await answer.body.arrayBuffer()));
        expect(Math.abs(decoded.probability - expected[i].probability)).toBeLessThan(1e-4);
      }
      expect(server.stats().succeeded).toBe(6);
    } finally {
      await server.shutdown();
    }
  });

  it('a body over the limit gets 413 naming the limit, on a connection that stays usable; one without a length gets it too', async () => {
    const model = gatedModel(vad);
    const server = await startHttpModelServer({ model, bodyLimit: 65_536, maxEventLoopDelayMs: 0 });
    const pool = new Pool(server.url, { connections: 1 }); // one connection: the 413 must not break it
    try {
      for (let i = 0; i < 2; i++) {
        const huge = await pool.request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: Buffer.alloc(20 * 2 ** 20) });
        expect(huge.statusCode).toBe(413);
        expect(await huge.body.json()).toEqual({ error: 'the request body is 20971520 bytes; this server accepts at most 65536 bytes (64 KiB)' });
      }
      // Chunked (no Content-Length): fastify finds out while reading, answers the same, and closes.
      const chunks = Readable.from(Array.from({ length: 4 }, () => Buffer.alloc(32_768)));
      const streamed = await pool.request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: chunks });
      expect(streamed.statusCode).toBe(413);
      expect(await streamed.body.json()).toEqual({ error: 'the request body is too large; this server accepts at most 65536 bytes (64 KiB)' });
      model.release();
      const fine = await pool.request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frames[0]) });
      expect(fine.statusCode).toBe(200);
      await fine.body.dump();
      expect(model.seen).toHaveLength(1);
      expect(server.doorStats()).toMatchObject({ tooLarge: 2, admitted: 2 });
    } finally {
      model.release();
      await pool.close();
      await server.shutdown();
    }
  });

  it('counts the deadline from arrival: a request whose time is gone when its body has been read gets 504 and never reaches the model', async () => {
    // A clock that moves 1000 ms each time it is read: read once on arrival, once after the body.
    let clock = 0;
    const model = gatedModel(vad);
    model.release();
    const server = await startHttpModelServer({ model, timeoutMs: 1000, maxEventLoopDelayMs: 0, now: () => (clock += 1000) });
    try {
      const late = await post(server.url, frames[0]);
      expect(late.statusCode).toBe(504);
      expect(await late.body.json()).toEqual({ error: "no answer within the deadline of 1000 ms from the request's arrival: it passed before it reached the model" });
      expect(model.seen).toHaveLength(0);
      expect(server.stats().submitted).toBe(0);
    } finally {
      await server.shutdown();
    }

    // The batcher gets only what is left: 100 ms from arrival, 1 of them spent reading the body.
    const readings = [0, 1];
    const held = gatedModel(vad);
    const strict = await startHttpModelServer({ model: held, timeoutMs: 100, maxEventLoopDelayMs: 0, now: () => readings.shift() ?? 1 });
    const timedOut = firstValueFrom(strict.batcher.results$.pipe(filter((s) => s.status === 'rejected')));
    try {
      const pending = post(strict.url, frames[0]);
      expect(await timedOut).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ name: 'RequestTimeoutError', timeoutMs: 99, phase: 'running' }) });
      const answer = await pending;
      expect(answer.statusCode).toBe(504);
      expect(await answer.body.json()).toEqual({ error: "no answer within the deadline of 100 ms from the request's arrival: it passed while its batch was running" });
    } finally {
      held.release();
      await strict.shutdown();
    }
  });

  it('over capacity: a running batch and a full queue take what they can, the rest get 503 at the door before their body is read, and every accepted request is answered correctly', async () => {
    // The gate holds the model, so what is running, waiting and refused is known exactly. A
    // window and a deadline longer than the test: batches go only when full, nothing times out.
    // (The event-loop check is off: in a test, client and server share one event loop.)
    const model = gatedModel(vad);
    const server = await startHttpModelServer({ model, maxBatchSize: 8, maxDelayMs: 60_000, maxQueueSize: 16, timeoutMs: 60_000, maxEventLoopDelayMs: 0 });
    const pool = new Pool(server.url, { connections: 64 }); // one connection per request: none waits in the client
    const send = (index: number) =>
      pool
        .request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frames[index % frames.length]) })
        .then(async (r) => ({ index, status: r.statusCode, retryAfter: r.headers['retry-after'], body: Buffer.from(await r.body.arrayBuffer()) }));
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    try {
      // 8 requests fill a batch, which goes to the model and is held there.
      const running = range(0, 8).map(send);
      await waitFor(() => model.seen.length === 8, 'the first batch to reach the model');
      // 16 more fill the queue.
      const waiting = range(8, 24).map(send);
      await waitFor(() => server.stats().queued === 16, 'the queue to fill');
      // Everything beyond is refused at once, while the model is still held, at the door: the
      // bodies (malformed here) are never read, or they would get 400.
      const malformed = (index: number) =>
        pool
          .request({ path: '/vad', method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"samples": "not a frame"}' })
          .then(async (r) => ({ index, status: r.statusCode, retryAfter: r.headers['retry-after'], body: await r.body.json() }));
      const refused = await Promise.all(range(24, 48).map(malformed));
      for (const { status, retryAfter, body } of refused) {
        expect(status).toBe(503);
        expect(retryAfter).toBe('1');
        expect(body).toEqual({ error: 'the server is at capacity (24 requests in progress); retry after 1 s' });
      }
      expect(model.seen).toHaveLength(8);
      expect(server.doorStats()).toMatchObject({ inside: 24, admitted: 24, refusedAtCapacity: 24 });

      model.release();
      const answered = await Promise.all([...running, ...waiting]); // rejects if any request failed at the HTTP level
      for (const { index, status, body } of answered) {
        expect(status).toBe(200);
        const result = resultFromBinary(body);
        const reference = expected[index % frames.length];
        expect(Math.abs(result.probability - reference.probability)).toBeLessThan(1e-4);
        expect(maxAbsDiff(result.state, reference.state)).toBeLessThan(1e-4);
      }
      // Three full batches: the one held, then the queue in two.
      expect(model.seen).toHaveLength(24);
      // The refused requests never reached the batcher.
      expect(server.stats()).toMatchObject({ submitted: 24, succeeded: 24, rejected: 0, queued: 0, inFlight: 0, batches: 3, batchSizes: { 8: 3 }, meanBatchSize: 8 });
    } finally {
      model.release();
      await pool.close();
      await server.shutdown();
    }
  });

  it('503 with Retry-After when the queue is full; a disconnected client never reaches the model; 504 past the deadline', async () => {
    const model = gatedModel(vad);
    const server: HttpModelServer = await startHttpModelServer({ model, maxBatchSize: 1, maxDelayMs: 0, maxQueueSize: 2, timeoutMs: 60_000, maxEventLoopDelayMs: 0 });
    try {
      const running = post(server.url, frames[0]);
      await waitFor(() => model.seen.length === 1, 'the first frame to reach the model');
      const leaving = new AbortController();
      const abandoned = post(server.url, { samples: new Float32Array(INPUT_SAMPLES).fill(0.125) }, leaving.signal);
      const waiting = post(server.url, frames[2]);
      await waitFor(() => server.stats().queued === 2, 'two requests to queue');

      const refused = await post(server.url, frames[3]);
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(((await refused.body.json()) as { error: string }).error).toMatch(/retry after 1 s/);

      const cancelled = firstValueFrom(server.batcher.results$.pipe(filter((s) => s.status === 'rejected')));
      leaving.abort();
      await expect(abandoned).rejects.toThrow();
      expect(await cancelled).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: 'the client disconnected' }) });

      model.release();
      expect((await running).statusCode).toBe(200);
      expect((await waiting).statusCode).toBe(200);
      expect(model.seen).toHaveLength(2); // the abandoned frame never ran
      expect(model.seen.some((frame) => frame.samples[100] === 0.125)).toBe(false);
      expect(server.stats()).toMatchObject({ submitted: 3, succeeded: 2, cancelled: 1, rejected: 0 });
      expect(server.doorStats()).toMatchObject({ admitted: 3, refusedAtCapacity: 1 });
    } finally {
      model.release();
      await server.shutdown();
    }

    const slow = gatedModel(vad);
    const strict = await startHttpModelServer({ model: slow, timeoutMs: 50, maxEventLoopDelayMs: 0 });
    try {
      const late = await post(strict.url, frames[0]);
      expect(late.statusCode).toBe(504);
      expect(((await late.body.json()) as { error: string }).error).toMatch(/50 ms/);
    } finally {
      slow.release();
      await strict.shutdown();
    }
  });

  it('under pressure (here a failing health check), new requests get 503 with Retry-After before their body is read; the door opens again when it passes', async () => {
    // under-pressure samples the event-loop delay and the health check on one timer and sheds
    // from the same handler; the health check is the deterministic way to make it shed.
    let healthy = true;
    const model = gatedModel(vad);
    model.release();
    const server = await startHttpModelServer({ model, sampleIntervalMs: 5, retryAfterSeconds: 3, healthCheck: () => healthy, maxEventLoopDelayMs: 0 });
    try {
      healthy = false;
      await waitFor(() => server.doorStats().underPressure, 'the health check to fail');
      const refused = await request(`${server.url}/vad`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"samples": "not a frame"}' });
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('3');
      expect(await refused.body.json()).toEqual({ error: 'the server cannot serve requests now (health check failed); retry after 3 s' });
      expect(server.doorStats()).toMatchObject({ admitted: 0, refusedUnhealthy: 1 });
      // /stats is not behind the door.
      expect((await request(`${server.url}/stats`)).statusCode).toBe(200);

      healthy = true;
      await waitFor(() => !server.doorStats().underPressure, 'the health check to pass');
      const served = await post(server.url, frames[0]);
      expect(served.statusCode).toBe(200);
      await served.body.dump();
      expect(server.stats().submitted).toBe(1);
    } finally {
      await server.shutdown();
    }
  });

  it('a burst far beyond capacity over many connections: every request is answered (200 or 503), none is reset or left hanging, and a normal request is served after it', async () => {
    // Counts, not times: 1,500 requests at once over 500 connections to the real model, with
    // the event-loop check on. Which ones are served depends on timing; that each gets an
    // answer does not.
    const server = await startHttpModelServer({ model: vad, maxBatchSize: 64, maxQueueSize: 128, timeoutMs: 60_000 });
    const pool = new Pool(server.url, { connections: 500 });
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 1500 }, (_, i) =>
          pool.request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frames[i % frames.length]) }).then(async (r) => {
            const body = Buffer.from(await r.body.arrayBuffer());
            return { index: i, status: r.statusCode, retryAfter: r.headers['retry-after'], body };
          }),
        ),
      );
      const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));
      expect(failures).toEqual([]);
      const answers = outcomes.map((o) => (o as PromiseFulfilledResult<{ index: number; status: number; retryAfter: unknown; body: Buffer }>).value);
      const byStatus = new Map<number, number>();
      for (const { status } of answers) byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      expect([...byStatus.keys()].filter((status) => status !== 200 && status !== 503)).toEqual([]);
      for (const { index, status, retryAfter, body } of answers) {
        if (status === 503) expect(retryAfter).toBe('1');
        else expect(Math.abs(resultFromBinary(body).probability - expected[index % frames.length].probability)).toBeLessThan(1e-4);
      }
      const door = server.doorStats();
      expect(door.admitted + door.refusedAtCapacity + door.refusedOverloaded).toBe(1500);
      expect(door.admitted).toBe(byStatus.get(200));
      expect(server.stats()).toMatchObject({ submitted: door.admitted, succeeded: door.admitted, queued: 0, inFlight: 0 });

      const after = await post(server.url, frames[0]);
      expect(after.statusCode).toBe(200);
      await after.body.dump();
    } finally {
      await pool.close();
      await server.shutdown();
    }
  });

  it('shutdown() drains: requests already queued are answered, then the server closes', async () => {
    const model = gatedModel(vad);
    const server = await startHttpModelServer({ model, maxBatchSize: 2, maxDelayMs: 0, timeoutMs: 60_000, maxEventLoopDelayMs: 0 });
    const pending = [0, 1, 2, 3, 4].map((i) => post(server.url, frames[i]));
    await waitFor(() => server.stats().queued + server.stats().inFlight === 5, 'five requests to arrive');
    const down = server.shutdown();
    model.release();
    const statuses = await Promise.all(pending.map(async (p) => (await p).statusCode));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    await down;
    expect(server.stats()).toMatchObject({ stopped: true, succeeded: 5 });
    await expect(post(server.url, frames[0])).rejects.toThrow(/ECONNREFUSED/);
  });
});
