import { BatchResultError, BatcherStoppedError, QueueFullError, RequestTimeoutError } from '../../lib';
import { memoryTransport, remoteBatcher, RemoteBatchError, serveBatches, type BatchTransport, type BatchWorker } from '../../lib/remote';
import { deferred, outcome } from '../helpers/recording';
import { afterSend } from '../helpers/virtualClock';

// The shared producer/worker logic on the in-memory transport, with jest's fake timers:
// windows, deadlines, claim expiry and touches all run on virtual time.
describe('remote batching on the in-memory transport (virtual time)', () => {
  const workers: BatchWorker[] = [];
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] }));
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      const stopped = w.stop();
      await jest.runOnlyPendingTimersAsync();
      await stopped;
    }
    jest.useRealTimers();
  });
  const serve = async (...args: Parameters<typeof serveBatches<number, number>>): Promise<BatchWorker> => {
    const w = await serveBatches<number, number>(...args);
    workers.push(w);
    return w;
  };
  const double = (xs: readonly number[]): number[] => xs.map((x) => 2 * x);

  it('routes each result to its caller and batches what is waiting', async () => {
    const t = memoryTransport();
    const p = remoteBatcher<number, number>(t, 'double');
    const calls = [1, 2, 3, 4, 5].map((x) => p.run(x));
    const sizes: number[] = [];
    await serve(t, 'double', (xs) => (sizes.push(xs.length), double(xs)), { maxBatchSize: 8 });
    await expect(Promise.all(calls)).resolves.toEqual([2, 4, 6, 8, 10]);
    expect(sizes).toEqual([5]);
    expect(p.stats()).toMatchObject({ submitted: 5, succeeded: 5, inFlight: 0, duplicatesDropped: 0 });
  });

  it('requests issued over one turn of the event loop leave in one send: a caller that yields once joins the rest', async () => {
    const t = memoryTransport();
    const sends: number[] = [];
    const recording: BatchTransport = {
      ...t,
      openProducer: async (subject, onReplies, onEvent) => {
        const link = await t.openProducer(subject, onReplies, onEvent);
        return { ...link, send: (messages) => (sends.push(messages.length), link.send(messages)) };
      },
    };
    const p = remoteBatcher<number, number>(recording, 'turn');
    const calls: Promise<number>[] = [];
    setImmediate(() => calls.push(p.run(3))); // queued before this tick's send, like a closed-loop caller that yields
    calls.push(p.run(1), p.run(2));
    await new Promise((turnOver) => setImmediate(turnOver));
    expect(p.stats().batches).toBe(2); // the engine sealed two batches (one per tick)…
    const sizes: number[] = [];
    await serve(t, 'turn', (xs) => (sizes.push(xs.length), double(xs)), { maxBatchSize: 8 });
    await expect(Promise.all(calls)).resolves.toEqual([2, 4, 6]);
    expect(sends).toEqual([3]); // …written in one send, so the worker pulls them as one batch
    expect(sizes).toEqual([3]);
  });

  it('splits at maxBatchSize and gathers for maxDelayMs after the first request', async () => {
    const t = memoryTransport();
    const sizes: number[] = [];
    const w = await serve(t, 'g', (xs) => (sizes.push(xs.length), double(xs)), { maxBatchSize: 8, maxDelayMs: 10 });
    const p = remoteBatcher<number, number>(t, 'g');
    const first = p.run(1);
    await afterSend();
    await jest.advanceTimersByTimeAsync(4);
    const later = [2, 3].map((x) => p.run(x));
    await afterSend();
    expect(sizes).toEqual([]);
    await jest.advanceTimersByTimeAsync(6);
    await expect(Promise.all([first, ...later])).resolves.toEqual([2, 4, 6]);
    expect(sizes).toEqual([3]);
    const many = Array.from({ length: 20 }, (_, i) => p.run(i));
    await afterSend();
    await jest.advanceTimersByTimeAsync(50);
    await expect(Promise.all(many)).resolves.toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
    expect(sizes.slice(1)).toEqual([8, 8, 4]);
    expect(w.stats()).toMatchObject({ batches: 4, pulled: 23, succeeded: 23, batchSizes: { 3: 1, 8: 2, 4: 1 } });
  });

  it('fails every caller of a throwing batch with the worker message, an Error slot fails one caller, a bad count is a BatchResultError', async () => {
    const t = memoryTransport();
    await serve(t, 's', (xs) => {
      if (xs.includes(-1)) throw new TypeError('model exploded');
      if (xs.includes(-2)) return xs.slice(1);
      return xs.map((x) => (x === 13 ? new RangeError('unlucky') : x));
    }, { maxBatchSize: 8 });
    const p = remoteBatcher<number, number>(t, 's', { name: 'scorer' });
    const thrown = await Promise.allSettled([p.run(-1), p.run(5)]);
    for (const r of thrown) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as RemoteBatchError;
      expect(e).toBeInstanceOf(RemoteBatchError);
      expect(e).toMatchObject({ kind: 'batch-failed', remoteName: 'TypeError', remoteMessage: 'model exploded', batcher: 'scorer' });
      expect(e.message).toContain('model exploded');
    }
    const [ok, bad] = await Promise.allSettled([p.run(7), p.run(13)]);
    expect(ok).toEqual({ status: 'fulfilled', value: 7 });
    expect((bad as PromiseRejectedResult).reason).toMatchObject({ kind: 'item-failed', remoteName: 'RangeError', remoteMessage: 'unlucky' });
    const short = await Promise.allSettled([p.run(-2), p.run(1)]);
    for (const r of short) expect((r as PromiseRejectedResult).reason).toEqual(expect.any(BatchResultError));
    expect((short[0] as PromiseRejectedResult).reason).toMatchObject({ expected: 2, actual: 1 });
    await expect(p.run(4)).resolves.toBe(4); // the worker keeps serving
  });

  it('rejects like the local Batcher: timeout, abort, full, stopped, bad options', async () => {
    const t = memoryTransport();
    const p = remoteBatcher<number, number>(t, 'nobody-serves', { timeoutMs: 100, maxQueueSize: 2 });
    const timedOut = outcome(p.run(1));
    const aborter = new AbortController();
    const aborted = outcome(p.run(2, { signal: aborter.signal }));
    await expect(p.run(3)).rejects.toBeInstanceOf(QueueFullError);
    aborter.abort(new Error('client went away'));
    await jest.advanceTimersByTimeAsync(0);
    expect(aborted.error).toEqual(new Error('client went away'));
    await jest.advanceTimersByTimeAsync(100);
    expect(timedOut.error).toBeInstanceOf(RequestTimeoutError);
    expect(timedOut.error).toMatchObject({ timeoutMs: 100, phase: 'running' });
    await expect(p.run(4, { signal: AbortSignal.abort('gone') })).rejects.toBe('gone');
    await expect(p.run(5, { timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(t.backlog('nobody-serves')).resolves.toEqual({ waiting: 3 - 1, pending: 0 }); // pre-aborted and refused calls were never sent
    const left = outcome(p.run(6));
    await p.stop();
    await jest.advanceTimersByTimeAsync(0);
    expect(left.error).toBeInstanceOf(BatcherStoppedError);
    await expect(p.run(7)).rejects.toBeInstanceOf(BatcherStoppedError);
    expect(p.stats()).toMatchObject({ submitted: 7, timedOut: 1, cancelled: 2, rejected: 4, inFlight: 0, stopped: true });
  });

  it('run$ is cold, emits the answer once and cancels on unsubscribe', async () => {
    const t = memoryTransport();
    const gate = deferred<void>();
    await serve(t, 'obs', async (xs) => (await gate.promise, double(xs)), { maxBatchSize: 8, claimIdleMs: 10_000 });
    const p = remoteBatcher<number, number>(t, 'obs');
    const cold = p.run$(1);
    await jest.advanceTimersByTimeAsync(0);
    expect(p.stats().submitted).toBe(0); // nothing sent before subscribing
    const seen: number[] = [];
    let completed = false;
    cold.subscribe({ next: (v) => seen.push(v), complete: () => (completed = true) });
    const dropped = p.run$(2).subscribe({ error: () => seen.push(-1) });
    await jest.advanceTimersByTimeAsync(0);
    dropped.unsubscribe();
    gate.resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(seen).toEqual([2]);
    expect(completed).toBe(true);
    expect(p.stats()).toMatchObject({ submitted: 2, succeeded: 1, cancelled: 1, duplicatesDropped: 1 });
  });

  it('drops a late reply after a timeout and counts it', async () => {
    const t = memoryTransport();
    const slow = deferred<void>();
    await serve(t, 'late', async (xs) => (await slow.promise, double(xs)), { maxBatchSize: 4, claimIdleMs: 10_000 });
    const p = remoteBatcher<number, number>(t, 'late', { timeoutMs: 50 });
    const call = outcome(p.run(1));
    await jest.advanceTimersByTimeAsync(50);
    expect(call.error).toBeInstanceOf(RequestTimeoutError);
    slow.resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(p.stats()).toMatchObject({ timedOut: 1, duplicatesDropped: 1 });
  });

  it('reclaims a batch held by a hung worker after claimIdleMs; the late duplicate is dropped', async () => {
    const t = memoryTransport();
    const hang = deferred<void>();
    const p = remoteBatcher<number, number>(t, 'r');
    const calls = [1, 2, 3].map((x) => outcome(p.run(x)));
    await jest.advanceTimersByTimeAsync(0);
    const hung = await serve(t, 'r', async (xs, ctx) => {
      await Promise.race([hang.promise, new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))]);
      return xs.map(() => -1);
    }, { maxBatchSize: 4, claimIdleMs: 300, touchEveryMs: 0 });
    await jest.advanceTimersByTimeAsync(1);
    expect(hung.stats().batchesInFlight).toBe(1);
    const healthy = await serve(t, 'r', double, { maxBatchSize: 4, claimIdleMs: 300 });
    await jest.advanceTimersByTimeAsync(298);
    expect(calls.every((c) => !c.settled)).toBe(true);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.value ?? c.error)).toEqual([2, 4, 6]);
    // The three went in one entry: the healthy worker takes it over (its second delivery), may run
    // only two of them at once (the cap of a second delivery with maxBatchSize 4), so runs none of
    // it: it cuts it into new entries of two and one (appended uncharged, the entry acknowledged)
    // and runs those, read as new entries (not taken over) on their second delivery.
    expect(healthy.stats()).toMatchObject({ reclaimed: 0, redeliveries: 3 });
    hang.resolve();
    await jest.advanceTimersByTimeAsync(0);
    expect(p.stats()).toMatchObject({ succeeded: 3, duplicatesDropped: 3 });
    await expect(t.backlog('r')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('a slow batch that touches its claim is not reclaimed', async () => {
    const t = memoryTransport();
    const runs: number[] = [];
    const slowRun = (xs: readonly number[]) => new Promise<number[]>((resolve) => {
      runs.push(...xs);
      setTimeout(() => resolve(double(xs)), 1000);
    });
    await serve(t, 'touch', slowRun, { maxBatchSize: 4, claimIdleMs: 300, maxConcurrentBatches: 2 });
    await serve(t, 'touch', slowRun, { maxBatchSize: 4, claimIdleMs: 300 });
    const p = remoteBatcher<number, number>(t, 'touch');
    const calls = [1, 2].map((x) => p.run(x));
    await afterSend();
    await jest.advanceTimersByTimeAsync(1000);
    await expect(Promise.all(calls)).resolves.toEqual([2, 4]);
    expect(runs.sort()).toEqual([1, 2]);
    expect(p.stats().duplicatesDropped).toBe(0);
  });

  it('after maxDeliveries runs the caller gets an error, not a timeout', async () => {
    const t = memoryTransport();
    const runs: number[] = [];
    // A poison input hangs its batch (until the worker stops); nothing renews the claim.
    await serve(t, 'poison', (xs, ctx) => {
      runs.push(...xs);
      return new Promise<number[]>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    }, { maxBatchSize: 1, maxConcurrentBatches: 8, claimIdleMs: 100, touchEveryMs: 0, maxDeliveries: 3 });
    const p = remoteBatcher<number, number>(t, 'poison', { timeoutMs: 5000 });
    const call = outcome(p.run(9));
    await afterSend();
    await jest.advanceTimersByTimeAsync(301);
    expect(call.error).toBeInstanceOf(RemoteBatchError);
    expect(call.error).toMatchObject({ kind: 'deliveries-exhausted' });
    expect((call.error as Error).message).toContain('maxDeliveries');
    expect(runs).toEqual([9, 9, 9]);
    await expect(t.backlog('poison')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('a non-draining worker stop hands unfinished requests back; a draining one finishes them', async () => {
    const t = memoryTransport();
    const first = await serve(t, 'hand', (xs, ctx) =>
      new Promise<number[]>((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        setTimeout(() => resolve(double(xs)), 50);
      }), { maxBatchSize: 4, claimIdleMs: 10_000 });
    const p = remoteBatcher<number, number>(t, 'hand');
    const calls = [1, 2].map((x) => outcome(p.run(x)));
    await afterSend();
    await jest.advanceTimersByTimeAsync(1);
    await first.stop();
    expect(first.stats()).toMatchObject({ released: 2, succeeded: 0 });
    const second = await serve(t, 'hand', (xs) => new Promise((resolve) => setTimeout(() => resolve(double(xs)), 50)), { maxBatchSize: 4 });
    await jest.advanceTimersByTimeAsync(1);
    const stopping = second.stop({ drain: true });
    await jest.advanceTimersByTimeAsync(50);
    await stopping;
    expect(calls.map((c) => c.value)).toEqual([2, 4]);
    expect(second.stats()).toMatchObject({ redeliveries: 2, succeeded: 2, stopped: true });
  });

  it('drops requests whose caller gave up more than expiredGraceMs ago, without running them', async () => {
    const t = memoryTransport();
    const p = remoteBatcher<number, number>(t, 'stale');
    const gaveUp = outcome(p.run(1, { timeoutMs: 100 }));
    const patient = p.run(2, { timeoutMs: 60_000 });
    await jest.advanceTimersByTimeAsync(100);
    expect(gaveUp.error).toBeInstanceOf(RequestTimeoutError);
    await jest.advanceTimersByTimeAsync(1001); // just past the default 1000 ms grace
    const ran: number[] = [];
    const w = await serve(t, 'stale', (xs) => (ran.push(...xs), double(xs)), { maxBatchSize: 8 });
    await expect(patient).resolves.toBe(4);
    expect(ran).toEqual([2]);
    expect(w.stats()).toMatchObject({ pulled: 2, expired: 1, batches: 1 });
    await expect(t.backlog('stale')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it('a broker error while pulling is reported, retried after a back-off, and loses nothing', async () => {
    const inner = memoryTransport();
    let failures = 1;
    const flaky: typeof inner = {
      ...inner,
      openWorker: async (subject, options) => {
        const link = await inner.openWorker(subject, options);
        return { ...link, pull: (max, wait, signal) => (failures-- > 0 ? Promise.reject(new Error('connection reset')) : link.pull(max, wait, signal)) };
      },
    };
    const errors: string[] = [];
    const p = remoteBatcher<number, number>(inner, 'flaky');
    const call = outcome(p.run(3));
    const w = await serve(flaky, 'flaky', double, { maxBatchSize: 8, maxDelayMs: 5, onError: (e) => errors.push(e.message) });
    await jest.advanceTimersByTimeAsync(49);
    expect(errors).toEqual(['connection reset']);
    expect(call.settled).toBe(false); // backing off: 50 ms after the first failure
    await jest.advanceTimersByTimeAsync(1 + 5);
    expect(call.value).toBe(6);
    expect(w.stats()).toMatchObject({ brokerErrors: 1, succeeded: 1, pulled: 1 });
  });

  it('fetches the next batch while one runs, only when a backlog waits (the last pull came back full), one batch ahead', async () => {
    const t = memoryTransport();
    const runs: { xs: number[]; done: (ys: number[]) => void }[] = [];
    const w = await serve(t, 'ahead', (xs) => new Promise<number[]>((resolve) => runs.push({ xs: [...xs], done: resolve })), { maxBatchSize: 4, maxDelayMs: 5 });
    const p = remoteBatcher<number, number>(t, 'ahead');
    // A backlog: the first pull comes back full, so while that batch runs the worker holds the next one.
    const many = Array.from({ length: 10 }, (_, i) => p.run(i));
    await afterSend();
    await jest.advanceTimersByTimeAsync(1);
    expect(runs.map((r) => r.xs)).toEqual([[0, 1, 2, 3]]);
    expect(w.stats()).toMatchObject({ pulled: 8, queued: 4, inFlight: 4 });
    // The ten went in one entry, delivered whole: the last two wait in the worker link, pending at the broker.
    expect(await t.backlog('ahead')).toEqual({ waiting: 0, pending: 10 });
    // Not a second batch ahead, however long the first runs.
    await jest.advanceTimersByTimeAsync(50);
    expect(w.stats()).toMatchObject({ pulled: 8, queued: 4 });
    runs[0].done(runs[0].xs.map((x) => 2 * x));
    await jest.advanceTimersByTimeAsync(1);
    // The next batch starts at once with what was fetched; the last two come ahead of it, not full: no more ahead after them.
    expect(runs.map((r) => r.xs)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
    expect(w.stats()).toMatchObject({ pulled: 10, queued: 2 });
    runs[1].done(runs[1].xs.map((x) => 2 * x));
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2); // a short batch still gathers for its window (maxDelayMs from its first request)
    await jest.advanceTimersByTimeAsync(5);
    expect(runs.map((r) => r.xs)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    runs[2].done(runs[2].xs.map((x) => 2 * x));
    await expect(Promise.all(many)).resolves.toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    // No backlog (the last pull was short): requests arriving while a batch runs stay in the broker for late sealing.
    const one = p.run(100);
    await afterSend();
    await jest.advanceTimersByTimeAsync(10);
    const three = [101, 102, 103].map((x) => p.run(x));
    await afterSend();
    await jest.advanceTimersByTimeAsync(50);
    expect(runs.map((r) => r.xs).slice(3)).toEqual([[100]]);
    expect(await t.backlog('ahead')).toEqual({ waiting: 3, pending: 1 });
    runs[3].done([200]);
    await jest.advanceTimersByTimeAsync(10);
    expect(runs.map((r) => r.xs).slice(4)).toEqual([[101, 102, 103]]);
    runs[4].done([202, 204, 206]);
    await expect(Promise.all([one, ...three])).resolves.toEqual([200, 202, 204, 206]);
  });

  it('carries a Float32Array intact with the default codec', async () => {
    const t = memoryTransport();
    await serveBatches<Float32Array, Float32Array>(t, 'f32', (xs) => xs.map((x) => x.map((v) => v * 2)), { maxBatchSize: 4 }).then((w) => workers.push(w));
    const p = remoteBatcher<Float32Array, Float32Array>(t, 'f32');
    const out = await p.run(new Float32Array([0.5, -1.25, 3]));
    expect(Object.prototype.toString.call(out)).toBe('[object Float32Array]'); // v8.deserialize builds it outside jest's realm
    expect(Array.from(out)).toEqual([1, -2.5, 6]);
  });

  it('refuses bad options with messages that name the option', async () => {
    const t = memoryTransport();
    expect(() => remoteBatcher(t, '')).toThrow(/subject/);
    expect(() => remoteBatcher(t, 's', { maxInFlight: 3 } as never)).toThrow(/did you mean `maxQueueSize`/);
    expect(() => remoteBatcher(t, 's', { maxQueueSize: 0 })).toThrow(RangeError);
    await expect(serveBatches(t, 's', double, {} as never)).rejects.toThrow(/maxBatchSize` is required/);
    await expect(serveBatches(t, 's', double, { maxBatchSize: 4, maxWaitMs: 2 } as never)).rejects.toThrow(/did you mean `maxDelayMs`/);
    await expect(serveBatches(t, 's', double, { maxBatchSize: 4, claimIdleMs: 100, touchEveryMs: 100 })).rejects.toThrow(/touchEveryMs/);
  });
});
