import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { BINARY_TYPE, frameToBinary, resultFromBinary } from '../../examples/http-server/codec';
import type { ShutdownEvent } from '../../examples/graceful-shutdown/serveUntilSignal';
import { INPUT_SAMPLES } from '../../examples/models/sileroVad';
import { waitFor } from './helpers-wait';

const repo = join(__dirname, '..', '..');

describe('examples/graceful-shutdown: SIGTERM drains and exits with nothing lost', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('answers every queued request after SIGTERM, refuses new connections, and exits with code 0', async () => {
    // A batch window longer than the test may run: only the drain can send the requests. The
    // event-loop check is off: on a loaded machine it would answer some of the 20 with 503
    // (that shedding is the HTTP server's own spec); this one is about the drain.
    child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), join('examples', 'graceful-shutdown', 'main.ts')], {
      cwd: repo,
      env: { ...process.env, BATCH_DELAY_MS: '60000', PORT: '0', MAX_EVENT_LOOP_DELAY_MS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const stderr: string[] = [];
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    const events: ShutdownEvent[] = [];
    const listening = new Promise<string>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        const event = JSON.parse(line) as ShutdownEvent;
        events.push(event);
        if (event.event === 'listening') resolve(event.url);
      });
      void exited.then(([code]) => reject(new Error(`the server exited early with code ${code}: ${stderr.join('')}`)));
    });
    const url = await listening;

    const frames = Array.from({ length: 20 }, (_, i) => new Float32Array(INPUT_SAMPLES).map((_, j) => 0.3 * Math.sin((j * (i + 1)) / 20)));
    let answeredEarly: number | string | undefined; // an answer before SIGTERM: the wait below cannot end
    const answers = frames.map(async (samples) => {
      const response = await request(`${url}/vad`, { method: 'POST', headers: { 'content-type': BINARY_TYPE }, body: frameToBinary({ samples }) });
      return { status: response.statusCode, body: Buffer.from(await response.body.arrayBuffer()) };
    }).map((answer) => answer.then((a) => ((answeredEarly ??= a.status), a), (error: unknown) => {
      answeredEarly ??= String(error);
      return { status: -1, body: Buffer.alloc(0), error };
    }));
    await waitFor(async () => {
      if (answeredEarly !== undefined) throw new Error(`a request was answered before SIGTERM (${answeredEarly}); it should wait in the queue`);
      return ((await (await request(`${url}/stats`)).body.json()) as { queued: number }).queued === frames.length;
    }, 'all 20 requests to be queued', 30_000);

    child.kill('SIGTERM');
    const answered = await Promise.all(answers);
    for (const { status, body } of answered) {
      expect(status).toBe(200);
      const { probability, state } = resultFromBinary(body);
      expect(probability).toBeGreaterThanOrEqual(0);
      expect(probability).toBeLessThanOrEqual(1);
      expect(state).toHaveLength(256);
    }
    expect(await exited).toEqual([0, null]);
    await expect(request(`${url}/stats`)).rejects.toThrow(/ECONNREFUSED/);

    expect(events.map((e) => e.event)).toEqual(['listening', 'draining', 'stopped']);
    const [, draining, stopped] = events;
    expect(draining).toMatchObject({ signal: 'SIGTERM', stats: { queued: 20, succeeded: 0 } });
    expect(stopped).toMatchObject({ stats: { queued: 0, inFlight: 0, succeeded: 20, stopped: true, dispatchReasons: { drain: 1 } } });
  });
});
