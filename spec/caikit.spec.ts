/**
 * caikit's batcher tests (tests/runtime/model_management/test_batcher.py), ported by intent.
 * The originals were skipped for deadlocking; here they run on fake timers and must pass
 * every time. Tests 1, 2, 5, 6 and 9 live in batcher.spec.ts next to their siblings; this
 * file ports the rest and the bugs the reference lists.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Batcher, BatcherStoppedError } from '../lib';
import { settleMicrotasks } from './helpers/recording';

/** caikit's StubModule: run(bobs_name, last_name="Bit"), recording every request. */
interface StubRequest {
  bobs_name?: string;
  last_name?: string;
}

/** A run_batch that validates each request on its own: a missing required field fails that request only. */
function stubModel() {
  const reqs: StubRequest[] = [];
  const batches: StubRequest[][] = [];
  const runBatch = (inputs: readonly StubRequest[]) => {
    batches.push([...inputs]);
    return inputs.map((r) => {
      if (r.bobs_name === undefined) return new TypeError('Missing required argument: bobs_name');
      reqs.push(r);
      return `${r.bobs_name} ${r.last_name}`;
    });
  };
  return { reqs, batches, runBatch };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('caikit port', () => {
  it('test_stop_in_flight_batch: a request in a started batch succeeds; every other one is stopped', async () => {
    const seen: string[][] = [];
    const batcher = new Batcher<string, string>({
      maxBatchSize: 10,
      maxDelayMs: 2,
      runBatch: async (names) => {
        seen.push([...names]);
        await new Promise((r) => setTimeout(r, 1));
        return names.map((n) => `hi ${n}`);
      },
    });
    const names = Array.from({ length: 20 }, (_, i) => String(i));
    const calls = Promise.allSettled(names.map((n) => batcher.run(n)));
    const stopped = batcher.stop();
    await jest.advanceTimersByTimeAsync(5);
    await stopped;
    const results = await calls;
    const ran = new Set(seen.flat());
    results.forEach((r, i) => {
      if (ran.has(names[i])) expect(r).toEqual({ status: 'fulfilled', value: `hi ${names[i]}` });
      else expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BatcherStoppedError);
    });
    // deterministic here: the first full batch started before stop(), the second never did
    expect(seen).toEqual([names.slice(0, 10)]);
  });

  it('test_invalid_req_after_valid_req: invalid requests fail alone, valid ones succeed', async () => {
    const { runBatch } = stubModel();
    const batcher = new Batcher<StubRequest, string>({ maxBatchSize: 5, runBatch, defaults: {} });
    const inputs = Array.from({ length: 10 }, (_, i): StubRequest => (i < 2 ? { bobs_name: 'Bob', last_name: String(i) } : {}));
    const results = await Promise.allSettled(inputs.map((r) => batcher.run(r)));
    results.forEach((r, i) => {
      if (i < 2) expect(r).toEqual({ status: 'fulfilled', value: `Bob ${i}` });
      else expect((r as PromiseRejectedResult).reason).toEqual(new TypeError('Missing required argument: bobs_name'));
    });
  });

  it('test_valid_req_after_invalid_req: the mirror image, also without deadlock', async () => {
    const { runBatch } = stubModel();
    const batcher = new Batcher<StubRequest, string>({ maxBatchSize: 5, runBatch });
    const inputs = Array.from({ length: 10 }, (_, i): StubRequest => (i >= 2 ? { bobs_name: 'Bob', last_name: String(i) } : {}));
    const results = await Promise.allSettled(inputs.map((r) => batcher.run(r)));
    results.forEach((r, i) => {
      if (i >= 2) expect(r).toEqual({ status: 'fulfilled', value: `Bob ${i}` });
      else expect(r.status).toBe('rejected');
    });
  });

  it('one odd request cannot get its neighbours rejected (caikit bug §7.3)', async () => {
    const { runBatch, batches } = stubModel();
    const batcher = new Batcher<StubRequest & { flag?: boolean }, string>({
      maxBatchSize: 4,
      runBatch,
      defaults: { last_name: 'Bit', flag: false },
    });
    const results = await Promise.all([
      batcher.run({ bobs_name: 'a' }),
      batcher.run({ bobs_name: 'b' }),
      batcher.run({ bobs_name: 'c', flag: true }),
      batcher.run({ bobs_name: 'd' }),
    ]);
    expect(results).toEqual(['a Bit', 'b Bit', 'c Bit', 'd Bit']);
    expect(batches[0].map((r) => (r as { flag?: boolean }).flag)).toEqual([false, false, true, false]);
  });

  it('test_orphaned_events_race: a run() racing stop() settles either way, never hangs', async () => {
    const { runBatch } = stubModel();
    const before = new Batcher<StubRequest, string>({ maxBatchSize: 10, runBatch });
    const queued = before.run({ bobs_name: 'Bob' });
    const stopping = before.stop();
    await expect(queued).rejects.toMatchObject({ name: 'BatcherStoppedError', when: 'queued' });
    await stopping;

    const after = new Batcher<StubRequest, string>({ maxBatchSize: 10, runBatch });
    const stopping2 = after.stop();
    await expect(after.run({ bobs_name: 'Bob' })).rejects.toMatchObject({ name: 'BatcherStoppedError', when: 'before-run' });
    await stopping2;
  });

  it('re-entrancy: runBatch may call run() and stop() on its own batcher', async () => {
    let batcher!: Batcher<number, number>;
    const inner: Promise<number>[] = [];
    batcher = new Batcher<number, number>({
      maxBatchSize: 2,
      runBatch: (xs) => {
        if (xs.includes(1)) {
          inner.push(batcher.run(100));
          void batcher.stop({ drain: true });
        }
        return xs.map((x) => x + 1);
      },
    });
    const outer = [batcher.run(1), batcher.run(2)];
    await expect(Promise.all(outer)).resolves.toEqual([2, 3]);
    await settleMicrotasks();
    await expect(inner[0]).resolves.toBe(101);
  });

  it('test_destructor: a process that never calls stop() still exits on its own', async () => {
    jest.useRealTimers();
    const lib = path.resolve(__dirname, '..', 'lib');
    const code = `
      const { Batcher } = require(${JSON.stringify(lib)});
      const b = new Batcher({ maxBatchSize: 4, maxDelayMs: 5, timeoutMs: 60000, runBatch: async (xs) => xs.map((x) => x * 2) });
      Promise.all([b.run(1), b.run(2)]).then((r) => console.log('done', r.join(',')));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code_ = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(killer);
    expect(out.trim()).toBe('done 2,4');
    expect(code_).toBe(0);
  });
});
