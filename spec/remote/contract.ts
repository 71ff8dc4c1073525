import { BatcherStoppedError, QueueFullError } from '../../lib';
import { randomBytes } from 'node:crypto';
import {
  DroppedMessageError, remoteBatcher, RemoteBatchError, serveBatches, v8Codec,
  type BatchTransport, type BatchWorker, type Delivery, type RemoteBatcher, type RequestMessage, type ServeBatchesOptions, type WorkerLink,
} from '../../lib/remote';
import { signerFor } from '../../lib/remote/auth';
import { encodeReplies } from '../../lib/remote/wire';
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
/**
 * For the isolation case, where one extra delivery of an innocent request fails it: a worker
 * whose event loop stalls longer than a claim lasts loses what it holds to a reclaim, which
 * counts a delivery (at load 20 on 2 cores, 300 ms was not enough once in a few runs).
 */
const ISOLATION_CLAIM_IDLE_MS = 1000;

let subjects = 0;
/** A subject of its own for each test. */
const freshSubject = (): string => `contract-${process.pid}-${Date.now().toString(36)}-${++subjects}`;

const double = (xs: readonly number[]): number[] => xs.map((x) => 2 * x + 1);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The keys producers and workers share, and one an attacker made up. */
const KEY = randomBytes(32);
const AUTH = { keys: [KEY] };
const right = signerFor([KEY]);
const wrong = signerFor([randomBytes(32)]);

/** Pulls from a bystander's link until `count` requests have come. */
async function pullAll(link: WorkerLink, count: number): Promise<Delivery[]> {
  const got: Delivery[] = [];
  const deadline = Date.now() + 10_000;
  while (got.length < count) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} requests, got ${got.length}`);
    got.push(...(await link.pull(count - got.length, true)));
  }
  return got;
}

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

    it('one pull fills its room from a backlog of entries smaller than it (a backlog starts full batches)', async () => {
      const subject = freshSubject();
      const p = produce(subject);
      const calls: Promise<number>[] = [];
      // Three producer ticks of 30 requests: three broker entries, none as big as a pull's room.
      for (let tick = 0; tick < 3; tick++) {
        const before = (await transport.backlog(subject)).waiting;
        for (let i = 0; i < 30; i++) calls.push(p.run(tick * 30 + i));
        await waitFor(async () => (await transport.backlog(subject)).waiting > before, 'the tick to reach the broker');
      }
      const link = await target().transport().openWorker(subject, { claimIdleMs: 10_000, maxDeliveries: 5 });
      const got = await link.pull(64, true);
      expect(got.map((d) => v8Codec.decode(d.body))).toEqual(Array.from({ length: 64 }, (_, i) => i));
      // What it read beyond its room comes next, before anything else.
      const next = await link.pull(64, false);
      expect(next.map((d) => v8Codec.decode(d.body))).toEqual(Array.from({ length: 26 }, (_, i) => 64 + i));
      await link.release([...got, ...next]);
      await link.close();
      await serve(subject, double, { maxBatchSize: 64 });
      await expect(Promise.all(calls)).resolves.toEqual(Array.from({ length: 90 }, (_, i) => 2 * i + 1));
      await expectDrained(subject);
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
      // NATS counts messages, and the four calls of one tick are one message.
      const four = transport.kind === 'nats' ? 1 : 4;
      await waitFor(async () => (await transport.backlog(subject)).waiting === four, 'the four calls to be in the stream');
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

    it("isolateFailures: 'bisect' on a worker: an input that makes runBatch throw fails alone, its neighbours are answered", async () => {
      const subject = freshSubject();
      const w = await serve(subject, (xs) => {
        if (xs.includes(13)) throw new Error('cannot score 13');
        return double(xs);
      }, { isolateFailures: 'bisect', maxDelayMs: 20 });
      const p = produce(subject);
      const inputs = Array.from({ length: 16 }, (_, i) => i);
      const settled = await Promise.allSettled(inputs.map((x) => p.run(x)));
      for (const x of inputs) {
        if (x === 13) expect((settled[x] as PromiseRejectedResult).reason).toMatchObject({ kind: 'batch-failed', remoteMessage: 'cannot score 13' });
        else expect(settled[x]).toEqual({ status: 'fulfilled', value: 2 * x + 1 });
      }
      expect(w.stats().bisections).toBeGreaterThanOrEqual(1);
      await expectDrained(subject);
    });

    it('a worker that dies on one input (in process): redeliveries run in halving batches, so only that input exhausts its deliveries', async () => {
      const subject = freshSubject();
      const poison = 13;
      const maxDeliveries = 5;
      const ran: number[][] = [];
      let crashes = 0;
      let supervising = true;
      // A worker "dies" as a process would: from the crash on it answers, acknowledges, renews
      // and hands back nothing, so what it held waits in the broker until claimIdleMs passes.
      const startCrashable = async (): Promise<void> => {
        let dead = false;
        const base = target().transport();
        const mortal: BatchTransport = {
          kind: base.kind,
          openProducer: (s, on) => base.openProducer(s, on),
          backlog: (s) => base.backlog(s),
          async openWorker(s, o) {
            const link = await base.openWorker(s, o);
            const unlessDead = <A extends unknown[]>(f: (...a: A) => Promise<void>) => (...a: A): Promise<void> => (dead ? Promise.resolve() : f(...a));
            return {
              async pull(max, wait, signal) {
                if (!dead) {
                  const got = await link.pull(max, wait, signal);
                  if (!dead) return got;
                }
                if (signal !== undefined && !signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
                return [];
              },
              reply: unlessDead((f) => link.reply(f)),
              ack: unlessDead((d) => link.ack(d)),
              touch: unlessDead((d) => link.touch(d)),
              release: unlessDead((d) => link.release(d)),
              close: () => link.close(),
            };
          },
        };
        const w: BatchWorker = await serveBatches<number, number>(mortal, subject, (xs, ctx) => {
          if (!dead && !xs.includes(poison)) return (ran.push([...xs]), double(xs));
          if (!dead) {
            dead = true;
            crashes++;
            void w.stop(); // its batches' signals abort; nothing it says reaches the broker any more
            if (supervising) void startCrashable();
          }
          // Hangs like a dead process, until the worker object is stopped (maybe already, just above).
          return new Promise<number[]>((_, reject) => {
            if (ctx.signal.aborted) reject(ctx.signal.reason);
            else ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          });
        }, { maxBatchSize: 64, maxDelayMs: 20, claimIdleMs: ISOLATION_CLAIM_IDLE_MS, maxDeliveries, onError: () => undefined });
        workers.push(w);
      };
      await startCrashable();
      await startCrashable();
      const p = produce(subject, { timeoutMs: 60_000 });
      const inputs = Array.from({ length: 61 }, (_, i) => i);
      const settled = await Promise.allSettled(inputs.map((x) => p.run(x)));
      supervising = false;
      // Each failure with its error, so a failing run says why.
      const innocentFailures = inputs.filter((x) => x !== poison && settled[x].status === 'rejected')
        .map((x) => `${x}: ${String((settled[x] as PromiseRejectedResult).reason)}`);
      expect((settled[poison] as PromiseRejectedResult).reason).toMatchObject({ kind: 'deliveries-exhausted' });
      expect(crashes).toBe(maxDeliveries); // the poison ran maxDeliveries times, alone the last time
      expect(innocentFailures).toEqual([]);
      // Every innocent ran; one may have run twice: a batch that finished just before its
      // worker died (before its replies went out) is delivered and run again, as after a real crash.
      expect([...new Set(ran.flat())].sort((a, b) => a - b)).toEqual(inputs.filter((x) => x !== poison));
      await expectDrained(subject);
    }, 60_000);

    describe('attackers with a connection to the broker', () => {
      // A bystander joins the group as a raw link (no key), reads the pending requests, answers
      // them itself, then hands them back so the real worker gets them.
      const bystanderLink = (subject: string): Promise<WorkerLink> =>
        target().transport().openWorker(subject, { claimIdleMs: CLAIM_IDLE_MS, maxDeliveries: 5 });
      const inputOf = (d: Delivery): unknown => v8Codec.decode(d.body);

      it('auth: forged, replayed, unsigned and cut-short replies are dropped and counted; the caller gets the true answer', async () => {
        const subject = freshSubject();
        const errors: Error[] = [];
        const p = produce(subject, { auth: AUTH, onError: (e) => errors.push(e) });
        const call = p.run(21);
        const other = p.run(5);
        const bystander = await bystanderLink(subject);
        const pending = await pullAll(bystander, 2);
        const target21 = pending.find((d) => inputOf(d) === 21)!;
        const target5 = pending.find((d) => inputOf(d) === 5)!;
        const replyTo = target21.replyTo;
        const lie = encodeReplies([[target21.id, 'ok', v8Codec.encode(666)]]);
        // What a real worker would send for the other request, captured on the wire.
        const genuine = right.sealFrame(subject, replyTo, encodeReplies([[target5.id, 'ok', v8Codec.encode(11)]]));
        const replayed = Buffer.concat([genuine.subarray(0, 32), lie]); // its MAC, another id
        const frames = [
          lie, // unsigned
          wrong.sealFrame(subject, replyTo, lie), // signed with a key of its own
          replayed,
          right.sealFrame('another-subject', replyTo, lie), // signed for another subject
          right.sealFrame(subject, 'another-producer', lie), // signed for another producer
          genuine.subarray(0, genuine.length - 3), // cut short
          randomBytes(40), // garbage
        ];
        await bystander.reply(frames.map((frame) => ({ replyTo, frame })));
        await waitFor(() => p.stats().forged === frames.length, 'every forged frame to be dropped');
        await bystander.release(pending);
        await bystander.close();
        const ran: number[] = [];
        await serve(subject, (xs) => (ran.push(...xs), double(xs)), { auth: AUTH });
        await expect(Promise.all([call, other])).resolves.toEqual([43, 11]);
        expect(ran.sort((a, b) => a - b)).toEqual([5, 21]);
        expect(p.stats()).toMatchObject({ succeeded: 2, failed: 0, forged: frames.length, malformed: 0, oversized: 0, duplicatesDropped: 0 });
        expect(errors.every((e) => e instanceof DroppedMessageError && e.reason === 'forged')).toBe(true);
        expect(errors[0].message).toBe(
          `[rx-batcher] ${JSON.stringify(subject)}: dropped a reply frame of ${lie.length} bytes whose signature is missing or does not verify with any of the 1 keys in \`auth.keys\`; its callers keep waiting for the real reply. A client without the key published to this producer's reply address, or the workers have other keys (or none).`,
        );
        await expectDrained(subject);
      });

      it('auth: a request without a valid signature is acknowledged and never run, nor answered', async () => {
        const subject = freshSubject();
        const errors: Error[] = [];
        const ran: number[] = [];
        const w = await serve(subject, (xs) => (ran.push(...xs), double(xs)), { auth: AUTH, onError: (e) => errors.push(e) });
        const answers: Uint8Array[] = [];
        const bystander = await target().transport().openProducer(subject, (frame) => answers.push(frame));
        const replyTo = bystander.replyTo;
        const forged = (id: string, x: number): RequestMessage => ({ id, replyTo, body: v8Codec.encode(x) });
        const signedFor7 = right.signRequest(subject, forged('forged-3', 7));
        await bystander.send([
          forged('forged-1', 1000), // unsigned
          { ...forged('forged-2', 1000), mac: wrong.signRequest(subject, forged('forged-2', 1000)) },
          { ...forged('forged-3', 1000), mac: signedFor7 }, // a real signature, another body
          { ...forged('forged-4', 1000), mac: right.signRequest('another-subject', forged('forged-4', 1000)) },
          { ...forged('forged-5', 1000), deadline: Date.now() + 60_000, mac: signedFor7 }, // a deadline added
        ]);
        const p = produce(subject, { auth: AUTH });
        await expect(p.run(2)).resolves.toBe(5);
        await waitFor(() => w.stats().forged === 5, 'the forged requests to be dropped');
        await expectDrained(subject);
        expect(ran).toEqual([2]);
        expect(answers).toEqual([]);
        expect(w.stats()).toMatchObject({ forged: 5, rejected: 0, succeeded: 1 });
        expect(errors.map((e) => (e as DroppedMessageError).reason)).toEqual(['forged', 'forged', 'forged', 'forged', 'forged']);
        const size = v8Codec.encode(1000).length;
        expect(errors[0].message).toBe(
          `[rx-batcher] ${JSON.stringify(w.name)}: dropped request "forged-1" (${size} bytes): it carries no signature, so it was acknowledged without running. A client without the key wrote to the stream, or the producers have other keys (or none).`,
        );
        expect(errors[1].message).toContain('it has a signature that does not verify with any of the 1 keys in `auth.keys`');
        await bystander.close();
      });

      it('auth: a genuine request replayed after its deadline is not run again (expired, or dropped by the broker as a duplicate)', async () => {
        const subject = freshSubject();
        const p = produce(subject, { auth: AUTH });
        const call = p.run(7, { timeoutMs: 1500 });
        // The bystander captures the signed request on the wire, then hands it back.
        const bystander = await bystanderLink(subject);
        const [captured] = await pullAll(bystander, 1);
        await bystander.release([captured]);
        await bystander.close();
        const ran: number[] = [];
        const w = await serve(subject, (xs) => (ran.push(...xs), double(xs)), { auth: AUTH, expiredGraceMs: 0 });
        await expect(call).resolves.toBe(15);
        await waitFor(() => Date.now() > captured.deadline!, 'the deadline to pass');
        const replayer = await target().transport().openProducer(subject, () => undefined);
        const { id, replyTo, body, deadline, mac } = captured;
        await replayer.send([{ id, replyTo, body, deadline, mac }]);
        // JetStream drops the replay itself (the same Nats-Msg-Id within its duplicate window).
        const deduplicated = transport.kind === 'nats';
        if (!deduplicated) await waitFor(() => w.stats().expired === 1, 'the replayed request to be dropped as expired');
        await replayer.close();
        await expectDrained(subject);
        expect(ran).toEqual([7]);
        expect(w.stats()).toMatchObject({ forged: 0, expired: deduplicated ? 0 : 1 });
        expect(p.stats()).toMatchObject({ succeeded: 1, duplicatesDropped: 0 });
      });

      it('auth: keys rotate without downtime; a producer with only the previous key is still served, by the key it signed with', async () => {
        const subject = freshSubject();
        const previous = randomBytes(32);
        await serve(subject, double, { auth: { keys: [KEY, previous] } });
        const old = produce(subject, { auth: { keys: [previous] } }); // not rolled out to it yet
        const rolled = produce(subject, { auth: { keys: [KEY, previous] } });
        await expect(Promise.all([old.run(1), rolled.run(2)])).resolves.toEqual([3, 5]);
        await expectDrained(subject);
      });

      it('without auth: garbage and cut-short reply frames are dropped as malformed; the caller gets the true answer', async () => {
        const subject = freshSubject();
        const errors: Error[] = [];
        const p = produce(subject, { onError: (e) => errors.push(e) });
        const call = p.run(21);
        const bystander = await bystanderLink(subject);
        const pending = await pullAll(bystander, 1);
        const frame = encodeReplies([[pending[0].id, 'ok', v8Codec.encode(42)]]);
        const replyTo = pending[0].replyTo;
        await bystander.reply([
          { replyTo, frame: frame.subarray(0, frame.length - 3) },
          { replyTo, frame: randomBytes(40) },
          { replyTo, frame: v8Codec.encode({ not: 'a frame' }) },
          { replyTo, frame: new Uint8Array(0) },
        ]);
        await waitFor(() => p.stats().malformed === 4, 'the bad frames to be dropped');
        await bystander.release(pending);
        await bystander.close();
        await serve(subject, double);
        await expect(call).resolves.toBe(43);
        expect(errors.map((e) => (e as DroppedMessageError).reason)).toEqual(['malformed', 'malformed', 'malformed', 'malformed']);
        await expectDrained(subject);
      });

      it('maxPayloadBytes: a big input is refused at run(), a big request or result answered with an error, a big frame dropped unread', async () => {
        const subject = freshSubject();
        const limit = 1024;
        const ran: unknown[] = [];
        const w = await serve(subject, (xs) => (ran.push(...xs), xs.map((x) => (x === -1 ? 'y'.repeat(2 * limit) : 2 * x + 1)) as number[]), {
          maxPayloadBytes: limit,
        });
        const errors: Error[] = [];
        const p = produce<unknown, unknown>(subject, { maxPayloadBytes: limit, onError: (e) => errors.push(e) });
        const big = 'x'.repeat(limit);
        const bigBytes = v8Codec.encode(big).length;
        const refused = await p.run(big).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(RemoteBatchError);
        expect((refused as Error).message).toBe(
          `[rx-batcher] ${JSON.stringify(subject)}: a payload is over the limit: PayloadTooLarge: this input encodes to ${bigBytes} bytes, over maxPayloadBytes (${limit}); it was not sent. Send smaller inputs (e.g. a reference to data in object storage), or raise maxPayloadBytes on producers and workers alike.`,
        );
        // A producer without the limit: the worker refuses the request without decoding it.
        const unbounded = produce<unknown, unknown>(subject);
        await expect(unbounded.run(big)).rejects.toMatchObject({
          kind: 'payload-too-large',
          remoteMessage: `the request is ${bigBytes} bytes, over the worker's maxPayloadBytes (${limit}); it was neither decoded nor run`,
        });
        await expect(p.run(-1)).rejects.toMatchObject({
          kind: 'payload-too-large',
          remoteMessage: `the result encodes to ${v8Codec.encode('y'.repeat(2 * limit)).length} bytes, over the worker's maxPayloadBytes (${limit}); it was not sent`,
        });
        expect(ran).toEqual([-1]);
        expect(w.stats()).toMatchObject({ oversized: 1, rejected: 1 });
        await expectDrained(subject);

        // A frame over the limit reaches the producer: dropped without decoding; the caller still gets its answer.
        const quiet = freshSubject();
        const q = produce<unknown, unknown>(quiet, { maxPayloadBytes: limit, onError: (e) => errors.push(e) });
        const call = q.run(21);
        const bystander = await bystanderLink(quiet);
        const pending = await pullAll(bystander, 1);
        await bystander.reply([{ replyTo: pending[0].replyTo, frame: Buffer.alloc(limit + 1, 0xff) }]);
        await waitFor(() => q.stats().oversized === 1, 'the big frame to be dropped');
        await bystander.release(pending);
        await bystander.close();
        await serve(quiet, double);
        await expect(call).resolves.toBe(43);
        expect(errors.map((e) => (e as DroppedMessageError).reason)).toEqual(['oversized']);
        expect(errors[0].message).toBe(
          `[rx-batcher] ${JSON.stringify(quiet)}: dropped a reply frame of ${limit + 1} bytes, over maxPayloadBytes (${limit}), without decoding it; its callers wait until their deadline. Give the workers the same maxPayloadBytes: they answer a result over it with an error instead.`,
        );
        await expectDrained(quiet);
      });
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
        // Called in ticks of a worker batch each: a tick's calls may travel as one broker entry,
        // and a worker holds what it read of an entry beyond its batch for its next one.
        const calls: Promise<number>[] = [];
        for (let i = 0; i < n; i++) {
          if (i > 0 && i % 16 === 0) await new Promise((tick) => setImmediate(tick));
          calls.push(p.run(i));
        }
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

      it('a worker process that dies on one input, restarted by a supervisor: only that input exhausts its deliveries, every neighbour is answered', async () => {
        const subject = freshSubject();
        const poison = 13;
        const maxDeliveries = 5;
        const env = { RXB_MODE: 'exit-on', RXB_POISON: String(poison), RXB_MAX_BATCH: '64', RXB_MAX_DELAY_MS: '20', RXB_MAX_DELIVERIES: String(maxDeliveries) };
        let supervising = true;
        let crashes = 0;
        const started: ChildWorker[] = [];
        const restarts: Promise<void>[] = [];
        // The supervisor: two workers, each restarted when it dies.
        const supervise = async (): Promise<void> => {
          const c = await child(subject, env);
          started.push(c);
          void c.exited.then(() => {
            if (!supervising) return;
            crashes++;
            restarts.push(supervise());
          });
        };
        await Promise.all([supervise(), supervise()]);
        const p = produce(subject, { timeoutMs: 120_000 });
        const inputs = Array.from({ length: 61 }, (_, i) => i);
        const settled = await Promise.allSettled(inputs.map((x) => p.run(x)));
        supervising = false;
        await Promise.all(restarts);
        const innocentFailures = inputs.filter((x) => x !== poison && settled[x].status === 'rejected');
        expect(innocentFailures).toEqual([]);
        expect((settled[poison] as PromiseRejectedResult).reason).toMatchObject({ kind: 'deliveries-exhausted' });
        expect(crashes).toBeLessThanOrEqual(maxDeliveries);
        // Nothing left behind, with the workers still serving: a transport that moves requests
        // out of a redelivered entry (appends them again) leaves copies when a worker dies before
        // that entry is acknowledged; live workers answer them again (the producer drops the second answer).
        await expectDrained(subject);
        await Promise.all(started.map((c) => c.stop()));
        await expectDrained(subject);
      }, 120_000);

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
