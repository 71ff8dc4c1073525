/** @jest-environment ./spec/examples/helpers-onnx-environment.ts */
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
    } finally {
      await server.shutdown();
    }
  });

  it('over capacity: a running batch and a full queue take what they can, the rest get 503 at once, and every accepted request is answered correctly', async () => {
    // The gate holds the model, so what is running, waiting and refused is known exactly. A
    // window and a deadline longer than the test: batches go only when full, nothing times out.
    const model = gatedModel(vad);
    const server = await startHttpModelServer({ model, maxBatchSize: 8, maxDelayMs: 60_000, maxQueueSize: 16, timeoutMs: 60_000 });
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
      // Everything beyond is refused at once, while the model is still held.
      const refused = await Promise.all(range(24, 48).map(send));
      for (const { status, retryAfter } of refused) {
        expect(status).toBe(503);
        expect(retryAfter).toBe('1');
      }
      expect(model.seen).toHaveLength(8);

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
      expect(server.stats()).toMatchObject({ submitted: 48, succeeded: 24, rejected: 24, queued: 0, inFlight: 0, batches: 3, batchSizes: { 8: 3 }, meanBatchSize: 8 });
    } finally {
      model.release();
      await pool.close();
      await server.shutdown();
    }
  });

  it('503 with Retry-After when the queue is full; a disconnected client never reaches the model; 504 past the deadline', async () => {
    const model = gatedModel(vad);
    const server: HttpModelServer = await startHttpModelServer({ model, maxBatchSize: 1, maxDelayMs: 0, maxQueueSize: 2, timeoutMs: 60_000 });
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
      expect(server.stats()).toMatchObject({ succeeded: 2, cancelled: 1, rejected: 1 });
    } finally {
      model.release();
      await server.shutdown();
    }

    const slow = gatedModel(vad);
    const strict = await startHttpModelServer({ model: slow, timeoutMs: 50 });
    try {
      const late = await post(strict.url, frames[0]);
      expect(late.statusCode).toBe(504);
      expect(((await late.body.json()) as { error: string }).error).toMatch(/50 ms/);
    } finally {
      slow.release();
      await strict.shutdown();
    }
  });

  it('shutdown() drains: requests already queued are answered, then the server closes', async () => {
    const model = gatedModel(vad);
    const server = await startHttpModelServer({ model, maxBatchSize: 2, maxDelayMs: 0, timeoutMs: 60_000 });
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
