import { getEventListeners } from 'node:events';
import { Batcher, RequestTimeoutError } from '../../lib';
import type { BatchRules } from '../impls';
import { openLoop, uniformArrivals } from '../harness/openLoop';
import { collectedHeapBytes, now, peakRssMb, sleep } from '../harness/process';
import type { Metrics } from '../harness/tasks';

/** How each request of the soak is treated, by its index modulo 100. */
const ABORT_QUEUED = 0; // aborted right after run(): still queued
const ABORT_RUNNING = 50; // aborted 2.5 ms later: its batch is running (the model takes 4 ms)
const TIMES_OUT = 1; // timeoutMs 2: times out queued or running
const FAILS = 2; // the model answers this slot with an Error
const QUIET_SIGNAL = 3; // carries a signal that never fires: its listener must be removed
const MODEL_MS = 4;
const KIND_NAMES: Record<number, string> = { [ABORT_QUEUED]: 'abort while queued', [ABORT_RUNNING]: 'abort while running', [TIMES_OUT]: 'times out', [FAILS]: 'fails', [QUIET_SIGNAL]: 'quiet signal' };

class SoakAbort extends Error {}
class SoakItemError extends Error {}

/**
 * Scenario 6: `n` requests at a steady rate through ONE rx-batcher, ~1% aborted (half while
 * queued, half while running), ~1% timing out, ~1% failing in their own slot. Checks that every
 * request settles exactly once (`results$` sees each id once and the caller's promise settles
 * the expected way), that the heap after a forced GC returns to within 10% of where it started,
 * and that no timers or abort listeners are left.
 *
 * @example
 * ```ts
 * const m = await measureSoak(1_000_000, 40_000, { maxBatchSize: 64, maxDelayMs: 1, maxConcurrentBatches: 4 });
 * console.log(m.ok);
 * ```
 */
export async function measureSoak(n: number, ratePerSec: number, rules: BatchRules): Promise<Metrics> {
  const batcher = new Batcher<number, number>({
    name: 'soak',
    runBatch: (inputs) =>
      new Promise((resolve) =>
        setTimeout(() => resolve(inputs.map((x) => (x % 100 === FAILS ? new SoakItemError(`item ${x} failed`) : x * 2))), MODEL_MS),
      ),
    maxBatchSize: rules.maxBatchSize,
    maxDelayMs: rules.maxDelayMs,
    maxConcurrentBatches: rules.maxConcurrentBatches ?? 1,
  });
  const warmup = Math.min(20_000, Math.max(1000, n / 50));
  const seen = new Uint8Array(n + warmup + 2);
  let seenOutOfRange = 0;
  batcher.results$.subscribe((settlement) => {
    if (settlement.id < seen.length) seen[settlement.id]++;
    else seenOutOfRange++;
  });
  const tally = { succeeded: 0, aborted: 0, timedOut: 0, failed: 0, answeredPastDeadline: 0, wrong: 0, listenersLeft: 0 };
  const wrongOutcomes: string[] = [];
  const noteWrong = (i: number, outcome: string): void => {
    tally.wrong++;
    if (wrongOutcomes.length < 5) wrongOutcomes.push(`request ${i} (kind ${KIND_NAMES[i % 100] ?? 'plain'}): ${outcome}`);
  };
  const drive = async (count: number, rate: number): Promise<void> => {
    let settled = 0;
    await openLoop(uniformArrivals(rate, count), (i) => {
      submit(i).finally(() => settled++);
    });
    const deadline = now() + 10_000;
    while (settled < count && now() < deadline) await sleep(5);
  };
  const submit = (i: number): Promise<void> => {
    const kind = i % 100;
    const controller = kind === ABORT_QUEUED || kind === ABORT_RUNNING || kind === QUIET_SIGNAL ? new AbortController() : undefined;
    const options = kind === TIMES_OUT ? { timeoutMs: 2 } : controller !== undefined ? { signal: controller.signal } : undefined;
    const promise = options === undefined ? batcher.run(i) : batcher.run(i, options);
    if (kind === ABORT_QUEUED) controller!.abort(new SoakAbort('queued abort'));
    if (kind === ABORT_RUNNING) setTimeout(() => controller!.abort(new SoakAbort('running abort')), 2.5);
    return promise.then(
      (value) => {
        if (value === i * 2 && kind !== FAILS && kind !== TIMES_OUT && kind !== ABORT_QUEUED) tally.succeeded++;
        // A 2 ms deadline against a 4 ms model: only a stalled event loop lets the answer win.
        else if (value === i * 2 && kind === TIMES_OUT) tally.answeredPastDeadline++;
        else noteWrong(i, `fulfilled with ${String(value)}`);
        if (controller !== undefined && getEventListeners(controller.signal, 'abort').length > 0) tally.listenersLeft++;
      },
      (error: unknown) => {
        if (error instanceof SoakAbort && (kind === ABORT_QUEUED || kind === ABORT_RUNNING)) tally.aborted++;
        else if (error instanceof RequestTimeoutError && kind === TIMES_OUT) tally.timedOut++;
        else if (error instanceof SoakItemError && kind === FAILS) tally.failed++;
        else noteWrong(i, `rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        if (controller !== undefined && getEventListeners(controller.signal, 'abort').length > 0) tally.listenersLeft++;
      },
    );
  };

  await drive(warmup, ratePerSec);
  await sleep(20);
  const heapStart = collectedHeapBytes();
  Object.assign(tally, { succeeded: 0, aborted: 0, timedOut: 0, failed: 0, answeredPastDeadline: 0, wrong: 0, listenersLeft: 0 });
  wrongOutcomes.length = 0;
  const start = now();
  await drive(n, ratePerSec);
  const elapsed = now() - start;
  await sleep(20); // let the last abort timers (2.5 ms) fire
  const heapEnd = collectedHeapBytes();
  const timersWhileIdle = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const stats = batcher.stats();
  await batcher.stop();
  const timersAfterStop = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  let settledTwice = 0;
  let neverSettled = 0;
  const maxId = n + warmup;
  for (let id = 1; id <= maxId; id++) {
    if (seen[id] === 0) neverSettled++;
    else if (seen[id] > 1) settledTwice++;
  }
  const settledTotal = tally.succeeded + tally.aborted + tally.timedOut + tally.failed + tally.answeredPastDeadline + tally.wrong;
  const heapChange = (heapEnd - heapStart) / heapStart;
  const accounted = stats.succeeded + stats.failed + stats.cancelled + stats.timedOut + stats.rejected;
  const ok =
    settledTotal === n &&
    tally.wrong === 0 &&
    settledTwice === 0 &&
    neverSettled === 0 &&
    seenOutOfRange === 0 &&
    Math.abs(heapChange) <= 0.1 &&
    timersWhileIdle === 0 &&
    timersAfterStop === 0 &&
    tally.listenersLeft === 0 &&
    stats.queued === 0 &&
    stats.inFlight === 0 &&
    accounted === stats.submitted;
  return {
    ok,
    requests: n,
    achievedPerSec: (n * 1000) / elapsed,
    ...tally,
    settledTotal,
    settledTwice,
    neverSettled: neverSettled + seenOutOfRange,
    heapStartMb: heapStart / 2 ** 20,
    heapEndMb: heapEnd / 2 ** 20,
    heapChangePct: heapChange * 100,
    timersWhileIdle,
    timersAfterStop,
    wrongOutcomes: wrongOutcomes.join(' | '),
    meanBatchSize: stats.meanBatchSize,
    peakRssMb: peakRssMb(),
  };
}
