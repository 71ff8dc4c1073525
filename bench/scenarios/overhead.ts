import { createClient, type BatchRules, type ImplName } from '../impls';
import { trivialModel } from '../harness/models';
import { collectedHeapBytes, nextTurn, now, peakRssMb, sleep } from '../harness/process';
import { median } from '../harness/statistics';
import type { Metrics } from '../harness/tasks';

/**
 * Scenarios 1 and 2: `n` concurrent calls issued in one loop and awaited together, through a
 * trivial async model. Warm-up rounds on other instances come first, so the timed rounds
 * measure steady-state code rather than the JIT; then `rounds` timed rounds, each on a fresh
 * instance, and the median round is reported. Peak RSS covers the whole
 * process.
 *
 * @example
 * ```ts
 * const m = await measureThroughput('rx-batcher', 100_000, { maxBatchSize: 64, maxDelayMs: 0 }, 20_000, 3);
 * console.log(m.requestsPerSec);
 * ```
 */
export async function measureThroughput(impl: ImplName, n: number, rules: BatchRules, warmup: number, rounds = 1): Promise<Metrics> {
  const model = trivialModel();
  // Warm-up in rounds shaped like the timed ones (n concurrent calls, fresh instance), `warmup`
  // calls in all, so the JIT has optimised the same paths the timed rounds take.
  for (let done = 0; done < warmup; done += Math.min(n, warmup)) {
    const warm = createClient(impl, model, rules);
    await callAll(warm, Math.min(n, warmup));
    await warm.close();
  }
  const elapsed: number[] = [];
  const issue: number[] = [];
  // No forced GC here: right after `gc()` the next rounds ran much slower, as if compiled code
  // had to be rebuilt (measured: rx-batcher's 1k rounds went from 0.3 ms to 2–20 ms).
  for (let round = 0; round < rounds; round++) {
    const client = createClient(impl, model, rules);
    const t0 = now();
    const promises = new Array<Promise<number>>(n);
    for (let i = 0; i < n; i++) promises[i] = client.call(i);
    issue.push(now() - t0);
    const results = await Promise.all(promises);
    elapsed.push(now() - t0);
    await client.close();
    let wrong = 0;
    for (let i = 0; i < n; i++) if (results[i] !== i * 2) wrong++;
    if (wrong > 0) throw new Error(`${impl}: ${wrong} of ${n} results were wrong`);
  }
  const elapsedMs = median(elapsed);
  return {
    requestsPerSec: (n * 1000) / elapsedMs,
    nsPerRequest: (elapsedMs * 1e6) / n,
    elapsedMs,
    issueMs: median(issue),
    rounds,
    peakRssMb: peakRssMb(),
  };
}

/**
 * Heap bytes per pending request: `n` calls whose batches the model holds unanswered until the
 * heap has been measured (after forced GCs, with every promise still referenced), then answered
 * so every call is checked to settle.
 *
 * @example
 * ```ts
 * const { heapBytesPerPending } = await measurePendingHeap('dataloader', 100_000, { maxBatchSize: 64, maxDelayMs: 0 });
 * ```
 */
export async function measurePendingHeap(impl: ImplName, n: number, rules: BatchRules): Promise<Metrics> {
  const held: Array<() => void> = [];
  const client = createClient<number, number>(
    impl,
    {
      runBatch: (inputs) => new Promise<number[]>((resolve) => held.push(() => resolve(inputs.map((x) => x * 2)))),
      runOne: (input) => new Promise<number>((resolve) => held.push(() => resolve(input * 2))),
    },
    rules,
  );
  // Warm the code paths on a few calls so the measurement holds request state, not compiled code.
  const warm = Array.from({ length: 256 }, (_, i) => client.call(-1 - i));
  await settleAll(warm, held);
  const before = collectedHeapBytes();
  const promises = new Array<Promise<number>>(n);
  for (let i = 0; i < n; i++) promises[i] = client.call(i);
  await sleep(rules.maxDelayMs + 20); // every window has closed: batches are dispatched (and held)
  const after = collectedHeapBytes();
  const heldBatches = held.length;
  const settled = await settleAll(promises, held);
  await client.close();
  if (settled !== n) throw new Error(`${impl}: only ${settled} of ${n} pending calls settled after release`);
  return { heapBytesPerPending: (after - before) / n, heldModelCalls: heldBatches, peakRssMb: peakRssMb() };
}

async function callAll(client: { call(x: number): Promise<number> }, n: number): Promise<void> {
  const promises = new Array<Promise<number>>(n);
  for (let i = 0; i < n; i++) promises[i] = client.call(i);
  await Promise.all(promises);
}

/** Answers held model calls until every promise has settled; returns how many settled. */
async function settleAll(promises: readonly Promise<number>[], held: Array<() => void>): Promise<number> {
  let settled = 0;
  for (const promise of promises) promise.then(() => settled++, () => settled++);
  let lastProgress = now();
  while (settled < promises.length && now() - lastProgress < 2000) {
    const release = held.splice(0, held.length);
    for (const answer of release) answer();
    if (release.length > 0) lastProgress = now();
    await nextTurn();
  }
  await nextTurn();
  return settled;
}
