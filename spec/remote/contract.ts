import { BatcherStoppedError, QueueFullError } from '../../lib';
import { remoteBatcher, RemoteBatchError, serveBatches, type BatchTransport, type BatchWorker, type RemoteBatcher, type ServeBatchesOptions } from '../../lib/remote';
import { waitFor, type TestBroker } from './brokers';
import { startChildWorker, type ChildWorker } from './childWorkers';
import type { BrokerKind } from './fixtures/makeTransport';

/** How the contract suite reaches one transport. */
export interface ContractTarget {
  /** A new transport instance (its own connections). */
  transport(): BatchTransport;
  /** For worker child processes and restarts; absent for the in-memory transport. */
  broker?: { kind: BrokerKind; instance(): TestBroker };
}

/** Short claim times keep the suite fast; every wait below is for an event or a condition. */
const CLAIM_IDLE_MS = 300;

let subjects = 0;
/** A subject of its own for each test. */
const freshSubject = (): string => `contract-${process.pid}-${Date.now().toString(36)}-${++subjects}`;

const double = (xs: readonly number[]): number[] => xs.map((x) => 2 * x + 1);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The transport contract: every transport must pass it. In-process checks run for every
 * transport; worker child processes, kills and broker restarts for real brokers.
 */
export function describeTransportContract(name: string, target: () => ContractTarget, scope: { processes: boolean }): void {
  describe(`transport contract: ${name}`, () => {
    const workers: BatchWorker[] = [];
    const producers: RemoteBatcher<unknown, unknown>[] = [];
    const children: ChildWorker[] = [];
    let transport: BatchTransport;

    beforeAll(() => {
      transport = target().transport();
    });
    afterEach(async () => {
      await Promise.all(children.splice(0).map((c) => c.kill()));
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      await Promise.all(producers.splice(0).map((p) => p.stop()));
    });

    const serve = async (subject: string, run: Parameters<typeof serveBatches<number, number>>[2], options: Partial<ServeBatchesOptions<number>> = {}): Promise<BatchWorker> => {
      const w = await serveBatches<number, number>(target().transport(), subject, run, {
        maxBatchSize: 16, claimIdleMs: CLAIM_IDLE_MS, onError: () => undefined, ...options,
      });
      workers.push(w);
      return w;
    };
    const produce = <I = number, O = number>(subject: string, options: Parameters<typeof remoteBatcher>[2] = {}): RemoteBatcher<I, O> => {
      const p = remoteBatcher<I, O>(target().transport(), subject, options);
      producers.push(p as RemoteBatcher<unknown, unknown>);
      return p;
    };
    const expectDrained = async (subject: string): Promise<void> => {
      // Acks are sent after replies: wait for the broker to see the last one.
      await waitFor(async () => {
        const b = await transport.backlog(subject);
        return b.waiting === 0 && b.pending === 0;
      }, 'the stream to be empty with nothing pending');
      await expect(transport.backlog(subject)).resolves.toEqual({ waiting: 0, pending: 0 });
    };

    it('answers each caller once, in batches, and carries a Float32Array intact with the default codec', async () => {
      const subject = freshSubject();
      const sizes: number[] = [];
      const p = produce(subject);
      const early = Array.from({ length: 12 }, (_, i) => p.run(i)); // sent before any worker exists
      await serve(subject, (xs) => (sizes.push(xs.length), double(xs)), { maxBatchSize: 8 });
      await expect(Promise.all(early)).resolves.toEqual(Array.from({ length: 12 }, (_, i) => 2 * i + 1));
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(12);
      expect(Math.max(...sizes)).toBe(8);

      const f32Subject = freshSubject();
      await serveBatches<Float32Array, Float32Array>(target().transport(), f32Subject, (xs) => xs.map((x) => x.map((v) => v * 2)), { maxBatchSize: 4 })
        .then((w) => workers.push(w));
      const f = produce<Float32Array, Float32Array>(f32Subject);
      const out = await f.run(new Float32Array([0.5, -1.25, 3e-7]));
      expect(Object.prototype.toString.call(out)).toBe('[object Float32Array]');
      expect(Array.from(out)).toEqual(Array.from(new Float32Array([1, -2.5, 6e-7])));
      expect(p.stats()).toMatchObject({ succeeded: 12, duplicatesDropped: 0, inFlight: 0 });
      await expectDrained(subject);
      await expectDrained(f32Subject);
    });

    it('sends worker errors across: a throwing batch fails its callers, an Error slot one caller', async () => {
      const subject = freshSubject();
      await serve(subject, (xs) => {
        if (xs.includes(-1)) throw new Error('GPU out of memory');
        return xs.map((x) => (x === 13 ? new RangeError('unlucky input') : 2 * x + 1));
      });
      const p = produce(subject);
      await expect(p.run(-1)).rejects.toMatchObject({ kind: 'batch-failed', remoteMessage: 'GPU out of memory' });
      const [ok, bad] = await Promise.allSettled([p.run(1), p.run(13)]);
      expect(ok).toEqual({ status: 'fulfilled', value: 3 });
      expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(RemoteBatchError);
      expect((bad as PromiseRejectedResult).reason).toMatchObject({ kind: 'item-failed', remoteName: 'RangeError' });
      await expectDrained(subject);
    });

    it('maxQueueSize: refuses at once with QueueFullError, not a hang; a stopped producer refuses with BatcherStoppedError', async () => {
      const subject = freshSubject();
      const p = produce(subject, { maxQueueSize: 3, timeoutMs: 10_000 });
      const waiting = [1, 2, 3].map((x) => p.run(x));
      const refused = await p.run(4).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(QueueFullError);
      expect(refused).toMatchObject({ option: 'maxQueueSize', limit: 3 });
      expect((refused as Error).message).toContain('(maxQueueSize 3 requests waiting)');
      await serve(subject, double);
      await expect(Promise.all(waiting)).resolves.toEqual([3, 5, 7]);
      await expect(p.run(5)).resolves.toBe(11);
      await p.stop({ drain: true });
      await expect(p.run(6)).rejects.toBeInstanceOf(BatcherStoppedError);
      await expectDrained(subject);
    });

    it('a slow batch that renews its claim is not reclaimed; without renewal it is run twice and the duplicate dropped', async () => {
      const runs = new Map<number, number>();
      const slowFor = (ms: number) => (xs: readonly number[]) => {
        for (const x of xs) runs.set(x, (runs.get(x) ?? 0) + 1);
        return sleep(ms).then(() => double(xs));
      };
      const touched = freshSubject();
      // The batch outlasts the claim time 2.5 times over; renewing every 50 ms against a
      // 600 ms claim time leaves 550 ms of slack for an event loop on a loaded machine.
      const touchedClaimMs = 2 * CLAIM_IDLE_MS;
      const slow = slowFor(touchedClaimMs * 2.5);
      const a = await serve(touched, slow, { maxConcurrentBatches: 4, touchEveryMs: 50, claimIdleMs: touchedClaimMs });
      const b = await serve(touched, slow, { maxConcurrentBatches: 4, touchEveryMs: 50, claimIdleMs: touchedClaimMs });
      const p = produce(touched);
      await expect(Promise.all([1, 2, 3].map((x) => p.run(x)))).resolves.toEqual([3, 5, 7]);
      expect([...runs.values()]).toEqual([1, 1, 1]);
      expect(a.stats().reclaimed + b.stats().reclaimed).toBe(0);
      expect(p.stats().duplicatesDropped).toBe(0);
      await expectDrained(touched);

      runs.clear();
      const untouched = freshSubject();
      await serve(untouched, slowFor(CLAIM_IDLE_MS * 2.5), { maxConcurrentBatches: 4, touchEveryMs: 0 });
      const q = produce(untouched);
      await expect(q.run(7)).resolves.toBe(15);
      await waitFor(() => q.stats().duplicatesDropped >= 1, 'the second run of the untouched request to be answered and dropped');
      expect(runs.get(7)).toBeGreaterThanOrEqual(2);
      await expectDrained(untouched);
    });

    it('carries the deadline: a request whose caller gave up is acknowledged without running', async () => {
      const subject = freshSubject();
      const p = produce(subject);
      const gaveUp = p.run(1, { timeoutMs: 30 });
      const latestDeadline = Date.now() + 30; // read after run(): no earlier than the deadline it sent
      await expect(gaveUp).rejects.toMatchObject({ name: 'RequestTimeoutError' });
      // A timer can fire in the last millisecond before its deadline by Date.now(); with
      // expiredGraceMs 0 the worker must see the deadline strictly passed.
      await waitFor(() => Date.now() > latestDeadline, 'the clock to pass the deadline');
      const ran: number[] = [];
      const w = await serve(subject, (xs) => (ran.push(...xs), double(xs)), { expiredGraceMs: 0 });
      await expect(p.run(2, { timeoutMs: 10_000 })).resolves.toBe(5);
      await waitFor(() => w.stats().expired === 1, 'the stale request to be dropped');
      expect(ran).toEqual([2]);
      await expectDrained(subject);
    });

    it('carries each call’s context to the worker (ctx.contexts), encoded by the codec', async () => {
      const subject = freshSubject();
      const seen: unknown[] = [];
      await serve(subject, (xs, ctx) => (seen.push(...ctx.contexts), double(xs)));
      const p = produce(subject);
      await expect(Promise.all([p.run(1, { context: { traceId: 't-1', tenant: 7 } }), p.run(2)])).resolves.toEqual([3, 5]);
      expect(seen).toEqual([{ traceId: 't-1', tenant: 7 }, undefined]);
      await expectDrained(subject);
    });

    it('carries each call’s priority; a worker serves what it holds best ranked first', async () => {
      const subject = freshSubject();
      const seen: { inputs: number[]; priorities: readonly number[] }[] = [];
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      await serve(subject, async (xs, ctx) => {
        seen.push({ inputs: [...xs], priorities: ctx.priorities });
        if (seen.length === 1) await held;
        return double(xs);
      }, { maxBatchSize: 8, maxConcurrentBatches: 1, maxDelayMs: 20 });
      const p = produce(subject);
      const first = p.run(0);
      await waitFor(() => seen.length === 1, 'the first batch to start');
      // The worker's only slot is busy, so it pulls nothing: the next four wait in the broker,
      // in arrival order, and reach the worker together once the slot frees.
      const calls = [p.run(1), p.run(2, { priority: 5 }), p.run(3, { priority: -2 }), p.run(4, { priority: 1 })];
      await waitFor(async () => (await transport.backlog(subject)).waiting === 4, 'the four calls to be in the stream');
      release();
      await expect(Promise.all([first, ...calls])).resolves.toEqual([1, 3, 5, 7, 9]);
      expect(seen.slice(1)).toEqual([{ inputs: [2, 4, 1, 3], priorities: [5, 1, 0, -2] }]);
      await expectDrained(subject);
    });

    it('keeps each worker batch within its weight budget (weigh and maxBatchWeight on the worker)', async () => {
      const subject = freshSubject();
      const batches: { inputs: number[]; weight: number }[] = [];
      await serve(subject, (xs, ctx) => (batches.push({ inputs: [...xs], weight: ctx.weight }), double(xs)), {
        maxBatchSize: 16, weigh: (x) => x, maxBatchWeight: 10, maxDelayMs: 5,
      });
      const p = produce(subject);
      const inputs = [4, 3, 2, 6, 1, 9, 10, 5, 5];
      await expect(Promise.all(inputs.map((x) => p.run(x)))).resolves.toEqual(double(inputs));
      for (const b of batches) {
        expect(b.weight).toBe(b.inputs.reduce((a, x) => a + x, 0));
        expect(b.weight).toBeLessThanOrEqual(10);
      }
      expect(batches.flatMap((b) => b.inputs)).toEqual(inputs); // FIFO kept: nothing skipped ahead
      await expectDrained(subject);
    });

    it('after maxDeliveries runs the caller gets an error, not a timeout', async () => {
      const subject = freshSubject();
      const runs: number[] = [];
      // The poison input hangs its batch until the worker stops; nothing renews the claim.
      await serve(subject, (xs, ctx) => {
        runs.push(...xs);
        return new Promise<number[]>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      }, { maxBatchSize: 1, maxConcurrentBatches: 8, touchEveryMs: 0, maxDeliveries: 2 });
      const p = produce(subject, { timeoutMs: 15_000 });
      const error = await p.run(9).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteBatchError);
      expect(error).toMatchObject({ kind: 'deliveries-exhausted' });
      expect(runs).toEqual([9, 9]);
      await expectDrained(subject);
    });

    // The in-memory transport lives in one process: these checks exist only for real brokers.
    if (scope.processes) describe('across processes', () => {
      const broker = (): { kind: BrokerKind; instance(): TestBroker } => {
        const b = target().broker;
        if (b === undefined) throw new Error('this transport has no broker for child processes');
        return b;
      };
      const child = async (subject: string, env: Record<string, string> = {}): Promise<ChildWorker> => {
        const c = await startChildWorker(broker().kind, broker().instance().url, subject, { RXB_CLAIM_IDLE_MS: String(CLAIM_IDLE_MS), ...env });
        children.push(c);
        return c;
      };
      const runsPerInput = (workersList: ChildWorker[]): Map<number, number> => {
        const counts = new Map<number, number>();
        for (const w of workersList) for (const batch of w.batches) for (const x of batch) counts.set(x, (counts.get(x) ?? 0) + 1);
        return counts;
      };

      it('two worker processes settle every request exactly once and both take part', async () => {
        const subject = freshSubject();
        // Both take part by construction, not by timing: the first worker holds its first
        // batch until the second has run one of its own. A long claim time keeps the held
        // batch from being reclaimed however slowly the second process starts.
        const slowClaims = { RXB_CLAIM_IDLE_MS: '30000' };
        const w1 = await child(subject, { ...slowClaims, RXB_MODE: 'hold-first', RXB_BATCH_MS: '5' });
        const p = produce(subject, { timeoutMs: 30_000 });
        const n = 400;
        const calls = Array.from({ length: n }, (_, i) => p.run(i));
        await waitFor(() => w1.batches.length > 0, 'the first worker to hold its first batch');
        const w2 = await child(subject, { ...slowClaims, RXB_BATCH_MS: '5' });
        await waitFor(() => w2.batches.length > 0, 'the second worker to run a batch while the first holds one', 20_000);
        w1.release();
        const results = await Promise.all(calls);
        expect(results).toEqual(Array.from({ length: n }, (_, i) => 2 * i + 1));
        await Promise.all([w1.stop(), w2.stop()]);
        const counts = runsPerInput([w1, w2]);
        expect(counts.size).toBe(n);
        expect([...counts.values()].every((c) => c === 1)).toBe(true);
        expect(p.stats()).toMatchObject({ succeeded: n, failed: 0, timedOut: 0, duplicatesDropped: 0 });
        await expectDrained(subject);
      });

      it('a worker SIGKILLed mid-batch loses nothing: a live worker reclaims its requests after claimIdleMs', async () => {
        const subject = freshSubject();
        const doomed = await child(subject, { RXB_MODE: 'hang', RXB_MAX_BATCH: '64' });
        const p = produce(subject, { timeoutMs: 15_000 });
        const calls = Array.from({ length: 20 }, (_, i) => p.run(i));
        await waitFor(() => doomed.batches.length > 0, 'the doomed worker to start a batch');
        const held = doomed.batches[0].length;
        const survivor = await serve(subject, double, { maxBatchSize: 64 });
        const killedAt = Date.now();
        await doomed.kill();
        await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 1));
        const recoveryMs = Date.now() - killedAt;
        expect(survivor.stats().reclaimed).toBe(held);
        expect(recoveryMs).toBeLessThan(10_000);
        expect(p.stats()).toMatchObject({ succeeded: 20, timedOut: 0 });
        await expectDrained(subject);
      });

      it('a crash between reply and acknowledgement turns into a duplicate that the producer drops', async () => {
        const subject = freshSubject();
        const crashing = await child(subject, { RXB_MODE: 'crash-after-reply', RXB_MAX_BATCH: '64' });
        const p = produce(subject, { timeoutMs: 15_000 });
        const calls = Array.from({ length: 10 }, (_, i) => p.run(i));
        await crashing.exited; // it replied, then killed itself before acknowledging
        // It replies once per tick, so its one reply frame answered at least its first batch and
        // at most every request it had started.
        const atLeast = crashing.batches[0].length;
        const atMost = crashing.batches.flat().length;
        const rerun: number[] = [];
        await serve(subject, (xs) => (rerun.push(...xs), double(xs)), { maxBatchSize: 64 });
        await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 10 }, (_, i) => 2 * i + 1));
        await waitFor(() => p.stats().duplicatesDropped >= atLeast, 'the re-run batch to be answered again and dropped');
        await expectDrained(subject); // every re-run answer was published before its ack
        expect(p.stats()).toMatchObject({ succeeded: 10, failed: 0 });
        expect(p.stats().duplicatesDropped).toBeGreaterThanOrEqual(atLeast);
        expect(p.stats().duplicatesDropped).toBeLessThanOrEqual(atMost);
        expect(rerun.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
        await expectDrained(subject);
      });

      it('survives a broker restart mid-run: every call settles, the workers and producers carry on', async () => {
        const subject = freshSubject();
        await serve(subject, (xs) => sleep(2).then(() => double(xs)));
        const p = produce(subject, { timeoutMs: 5000 });
        // Eight callers in closed loops, each checking every answer, until told to stop.
        let running = true;
        let next = 0;
        const outcomes: { x: number; value?: number; error?: unknown }[] = [];
        const loops = Array.from({ length: 8 }, async () => {
          while (running) {
            const x = next++;
            await p.run(x).then((value) => outcomes.push({ x, value }), (error: unknown) => outcomes.push({ x, error }));
          }
        });
        await waitFor(() => outcomes.length >= 50, 'answers before the restart');
        expect(p.stats().inFlight).toBeGreaterThan(0);
        await broker().instance().restart();
        const settledAtRestart = outcomes.length;
        await waitFor(() => outcomes.filter((o) => o.value !== undefined).length >= settledAtRestart + 100, 'answers after the restart', 20_000);
        running = false;
        await Promise.all(loops);
        for (const o of outcomes) {
          // A reply in flight when the broker died can be lost (pub/sub is fire and forget):
          // that caller gets its deadline, never a wrong value or a hang.
          if (o.error === undefined) expect(o.value).toBe(2 * o.x + 1);
          else expect((o.error as Error).name).toBe('RequestTimeoutError');
        }
        expect(outcomes).toHaveLength(next);
        await expectDrained(subject);
      }, 30_000);
    });
  });
}
