/**
 * Remote timing runs on the `scheduler` option. The producer, the worker and memoryTransport
 * all get the same RxJS VirtualTimeScheduler (no jest fake timers): windows, deadlines, claim
 * expiry, touches, long polls and the expired-request grace are all measured on its clock,
 * and happen exactly when it says. memoryTransport and the worker hand things on through
 * promises, so the clock moves one due action at a time and lets promise callbacks run after
 * each, as Node does between timers.
 */
import { timer, VirtualTimeScheduler } from 'rxjs';
import { RequestTimeoutError } from '../../lib';
import {
  memoryTransport,
  remoteBatcher,
  serveBatches,
  type BatchTransport,
  type BatchWorker,
  type RemoteBatcherOptions,
  type RequestMessage,
  type ServeBatchesOptions,
} from '../../lib/remote';
import { REMOTE_TIMEOUT_HINT } from '../../lib/remote/remoteOptions';
import type { BatchContext } from '../../lib';
import { outcome } from '../helpers/recording';
import { advanceVirtualClock, quiet } from '../helpers/virtualClock';

const advance = advanceVirtualClock;

const double = (xs: readonly number[]): number[] => xs.map((x) => 2 * x);

describe('remote timing on the scheduler option (one VirtualTimeScheduler for producer, worker and transport)', () => {
  let clock: VirtualTimeScheduler;
  let transport: BatchTransport;
  const workers: BatchWorker[] = [];
  let setTimeoutSpy: jest.SpyInstance;
  let setIntervalSpy: jest.SpyInstance;

  beforeEach(() => {
    clock = new VirtualTimeScheduler();
    transport = memoryTransport({ scheduler: clock });
    setTimeoutSpy = jest.spyOn(global, 'setTimeout');
    setIntervalSpy = jest.spyOn(global, 'setInterval');
  });
  afterEach(async () => {
    // Every timer was the virtual clock's: nothing reached the real ones.
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    expect(setIntervalSpy).not.toHaveBeenCalled();
    setTimeoutSpy.mockRestore();
    setIntervalSpy.mockRestore();
    for (const w of workers.splice(0)) {
      // A worker may be sleeping on the clock (topping up a window): move it until stopped.
      let stopped = false;
      void w.stop().then(() => (stopped = true));
      for (let step = 0; step < 100 && !stopped; step++) await advance(clock, 10);
      expect(stopped).toBe(true);
    }
  });

  const serve = async <I = number, O = number>(
    runBatch: (xs: readonly I[], ctx: BatchContext) => O[] | Promise<O[]>,
    options: ServeBatchesOptions<I>,
    subject = 's',
  ): Promise<BatchWorker> => {
    const w = await serveBatches<I, O>(transport, subject, runBatch, { scheduler: clock, ...options });
    workers.push(w);
    return w;
  };
  const producer = (options: RemoteBatcherOptions = {}, subject = 's') =>
    remoteBatcher<number, number>(transport, subject, { scheduler: clock, ...options });

  it('a worker window (maxDelayMs) gathers requests for exactly that long from the first', async () => {
    const batches: { inputs: number[]; at: number; reason: string }[] = [];
    await serve((xs, ctx) => (batches.push({ inputs: [...xs], at: clock.now(), reason: ctx.reason }), double(xs)), { maxBatchSize: 8, maxDelayMs: 10 });
    const p = producer();
    const first = outcome(p.run(1));
    await advance(clock, 4);
    const later = [2, 3].map((x) => outcome(p.run(x)));
    await advance(clock, 5);
    expect(batches).toEqual([]); // t=9: the window is still open
    await advance(clock, 1);
    expect(batches).toEqual([{ inputs: [1, 2, 3], at: 10, reason: 'delay' }]);
    expect([first, ...later].map((o) => o.value)).toEqual([2, 4, 6]);
  });

  // After topping up an open window the worker waits for the seal, not for another delay: a
  // request sent just after a batch was sealed gets a window of its own, starting when it is sent.
  it('after a window closes, the next request gets a window of its own, no longer', async () => {
    const batches: { inputs: number[]; at: number }[] = [];
    await serve((xs) => (batches.push({ inputs: [...xs], at: clock.now() }), double(xs)), { maxBatchSize: 8, maxDelayMs: 10 });
    const p = producer();
    const first = outcome(p.run(1));
    await advance(clock, 12);
    expect(first.value).toBe(2);
    const second = outcome(p.run(2));
    await advance(clock, 10);
    expect(batches).toEqual([{ inputs: [1], at: 10 }, { inputs: [2], at: 22 }]);
    expect(second.value).toBe(4);
  });

  // With maxDelayMs 1 the last top-up comes at once (0 ms before the window closes) and the
  // worker then waits for the seal: it never re-arms a 0 ms timer, so virtual time moves on.
  it('a worker with maxDelayMs 1 lets the virtual clock reach the end of its window', async () => {
    const batches: { inputs: number[]; at: number }[] = [];
    await serve((xs) => (batches.push({ inputs: [...xs], at: clock.now() }), double(xs)), { maxBatchSize: 8, maxDelayMs: 1 });
    const p = producer();
    const call = outcome(p.run(1));
    await advance(clock, 5);
    expect(batches).toEqual([{ inputs: [1], at: 1 }]);
    expect(call.value).toBe(2);
  });

  it('a producer deadline (timeoutMs) fires at exactly the virtual time, and travels with the request on that clock', async () => {
    const sent: RequestMessage[] = [];
    const recording: BatchTransport = {
      ...transport,
      openProducer: async (subject, onReplies) => {
        const link = await transport.openProducer(subject, onReplies);
        return { ...link, send: (messages) => (sent.push(...messages), link.send(messages)) };
      },
    };
    await advance(clock, 1000); // the deadline is a time on the clock, not a delay
    const p = remoteBatcher<number, number>(recording, 'nobody-serves', { scheduler: clock, timeoutMs: 250 });
    const call = outcome(p.run(1));
    const own = outcome(p.run(2, { timeoutMs: 40 }));
    await advance(clock, 39);
    expect(own.settled).toBe(false);
    await advance(clock, 1);
    expect(own.error).toMatchObject({ name: 'RequestTimeoutError', timeoutMs: 40, phase: 'running' });
    expect(sent.map((m) => m.deadline)).toEqual([1250, 1040]);
    await advance(clock, 209);
    expect(call.settled).toBe(false);
    await advance(clock, 1);
    expect(call.error).toBeInstanceOf(RequestTimeoutError);
    expect((call.error as Error).message).toBe(`[rx-batcher] "nobody-serves": the request timed out after 250 ms while its batch was running. ${REMOTE_TIMEOUT_HINT}`);
    expect(p.stats()).toMatchObject({ timedOut: 2, inFlight: 0 });
  });

  it('a hung worker\'s requests are reclaimed by another after claimIdleMs of virtual time', async () => {
    const p = producer();
    const calls = [1, 2, 3].map((x) => outcome(p.run(x)));
    const hung = await serve((xs, ctx) => new Promise<number[]>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
      { maxBatchSize: 4, claimIdleMs: 300, touchEveryMs: 0 });
    await advance(clock, 0);
    expect(hung.stats()).toMatchObject({ pulled: 3, batchesInFlight: 1 });
    const healthy = await serve(double, { maxBatchSize: 4, claimIdleMs: 300 });
    await advance(clock, 299);
    expect(calls.some((c) => c.settled)).toBe(false);
    expect(healthy.stats().pulled).toBe(0);
    await advance(clock, 1);
    expect(calls.map((c) => c.value)).toEqual([2, 4, 6]);
    // One entry, taken over, may not run whole (two is the cap of a second delivery with
    // maxBatchSize 4): cut into new entries of two and one, run on their second delivery.
    expect(healthy.stats()).toMatchObject({ pulled: 3, reclaimed: 0, redeliveries: 3, succeeded: 3 });
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
  });

  it.each([
    ['renews its claim every touchEveryMs: not reclaimed, run once', undefined, { runs: [1, 2], takenOver: 0, answeredAt: 1000 }],
    ['with touches off, is reclaimed after claimIdleMs and run twice', 0, { runs: [1, 2, 1, 2], takenOver: 2, answeredAt: 300 }],
  ] as const)('a slow batch (1000 ms, claims of 300 ms) %s', async (_, touchEveryMs, want) => {
    const runs: number[] = [];
    let answeredAt = -1;
    const slow = (xs: readonly number[]) => {
      runs.push(...xs);
      return new Promise<number[]>((resolve) => timer(1000, clock).subscribe(() => resolve(double(xs))));
    };
    const quick = (xs: readonly number[]) => (runs.push(...xs), double(xs));
    const p = producer();
    const calls = [1, 2].map((x) => p.run(x).then((v) => ((answeredAt = clock.now()), v)));
    await serve(slow, { maxBatchSize: 4, claimIdleMs: 300, ...(touchEveryMs === undefined ? {} : { touchEveryMs }) });
    await advance(clock, 0);
    const other = await serve(quick, { maxBatchSize: 4, claimIdleMs: 300 });
    await advance(clock, 1000);
    await expect(Promise.all(calls)).resolves.toEqual([2, 4]);
    expect({ runs, takenOver: other.stats().reclaimed, answeredAt }).toEqual(want);
    await advance(clock, 0);
    expect(p.stats().duplicatesDropped).toBe(want.takenOver); // the slow worker's late answers, if it was overtaken
  });

  it('a request whose deadline passed more than expiredGraceMs ago is acknowledged without running; one at the edge still runs', async () => {
    const p = producer();
    const long = outcome(p.run(1, { timeoutMs: 100 })); // gave up at 100: past 100 + 50 at 200
    const edge = outcome(p.run(2, { timeoutMs: 150 })); // gave up at 150: 150 + 50 is not past at 200
    const patient = outcome(p.run(3, { timeoutMs: 60_000 }));
    await advance(clock, 200);
    expect([long.error, edge.error].every((e) => e instanceof RequestTimeoutError)).toBe(true);
    const ran: number[] = [];
    const w = await serve((xs) => (ran.push(...xs), double(xs)), { maxBatchSize: 8, expiredGraceMs: 50 });
    await advance(clock, 0);
    expect(patient.value).toBe(6);
    expect(ran).toEqual([2, 3]);
    expect(w.stats()).toMatchObject({ pulled: 3, expired: 1, rejected: 1, succeeded: 2, batches: 1 });
    expect(p.stats()).toMatchObject({ duplicatesDropped: 1 }); // the answer to 2 came after its caller left
    await expect(transport.backlog('s')).resolves.toEqual({ waiting: 0, pending: 0 });
  });
});
