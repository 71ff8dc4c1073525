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

  it('under 3x the unbatched capacity answers every request correctly or with a clean 503/504, and nothing hangs', async () => {
    const server = await startHttpModelServer({ model: vad, maxBatchSize: 64, maxQueueSize: 32, timeoutMs: 100 });
    const pool = new Pool(server.url, { connections: 128, headersTimeout: 10_000, bodyTimeout: 10_000 });
    try {
      // Open loop: 114 requests every 10 ms is 11,400/s, 3x Silero's ~3,800 frames/s one at a time.
      // 128 connections can hold more requests than a running batch (64) plus the queue (32) take,
      // so 503s (and, on a slow machine, 504s) are allowed; anything else fails the test.
      const total = 1140;
      const responses: Promise<{ index: number; status: number; retryAfter: unknown; body: Buffer }>[] = [];
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          for (let i = 0; i < 114 && responses.length < total; i++) {
            const index = responses.length;
            responses.push(
              pool
                .request({ path: '/vad', method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary(frames[index % frames.length]) })
                .then(async (r) => ({ index, status: r.statusCode, retryAfter: r.headers['retry-after'], body: Buffer.from(await r.body.arrayBuffer()) })),
            );
          }
          if (responses.length >= total) {
            clearInterval(tick);
            resolve();
          }
        }, 10);
      });
      const settled = await Promise.all(responses); // rejects if any request failed at the HTTP level (or timed out)
      const counts: Record<number, number> = {};
      for (const { index, status, retryAfter, body } of settled) {
        counts[status] = (counts[status] ?? 0) + 1;
        if (status === 200) {
          const result = resultFromBinary(body);
          const reference = expected[index % frames.length];
          expect(Math.abs(result.probability - reference.probability)).toBeLessThan(1e-4);
          expect(maxAbsDiff(result.state, reference.state)).toBeLessThan(1e-4);
        } else if (status === 503) {
          expect(retryAfter).toBe('1');
        } else {
          expect(status).toBe(504);
        }
      }
      expect(Object.keys(counts).every((code) => ['200', '503', '504'].includes(code))).toBe(true);
      expect(counts[200]).toBeGreaterThan(total / 10);
      const stats = server.stats();
      expect(stats.submitted).toBe(total);
      expect(stats.succeeded).toBe(counts[200]);
      expect(stats.queued + stats.inFlight).toBe(0);
      expect(stats.meanBatchSize).toBeGreaterThan(2);
    } finally {
      await pool.close();
      await server.shutdown();
    }
  });

  it('503 with Retry-After when the queue is full; a disconnected client never reaches the model; 504 past the deadline', async () => {
    const model = gatedModel(vad);
    const server: HttpModelServer = await startHttpModelServer({ model, maxBatchSize: 1, maxDelayMs: 0, maxQueueSize: 2, timeoutMs: 5000 });
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
    const server = await startHttpModelServer({ model, maxBatchSize: 2, maxDelayMs: 0 });
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
