import { formatTable, runQuickstart } from '../../examples/quickstart/quickstart';

// Runs the demo's real code against the simulated model on jest's fake clock: the model's
// cost, the batch window and the 300 ms the load runs are virtual time, which moves only when
// every client is waiting. The numbers are the same on any machine, however busy.
describe('examples/quickstart (npm run demo:quickstart)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] }));
  afterEach(() => jest.useRealTimers());

  it('serves the same load with and without batching, and batching puts every client in each model call', async () => {
    const clients = 16;
    const progress: string[] = [];
    const running = runQuickstart({ clients, durationMs: 300, onProgress: (label) => progress.push(label) });
    await jest.runAllTimersAsync(); // both modes run to the end of their 300 virtual ms
    const [unbatched, batched] = await running;

    // Every answer was checked by the load loop (it throws on a wrong one).
    expect(unbatched).toMatchObject({ label: 'without batching', meanBatchSize: 1 });
    expect(batched.label).toBe('with rx-batcher');
    // The clients are in lockstep: a model call answers all of them at the same virtual moment,
    // and all their next requests are queued before the 2 ms window closes.
    expect(batched.meanBatchSize).toBe(clients);
    expect(batched.requests % clients).toBe(0);
    expect(batched.p99Ms).toBe(batched.p50Ms); // every request waited exactly as long
    // One call costs 5 ms + 0.1 ms per item: 16 requests per call beat 1 per call.
    expect(unbatched.requests).toBeGreaterThan(clients);
    expect(batched.requests).toBeGreaterThan(4 * unbatched.requests);
    for (const result of [unbatched, batched]) {
      expect(result.seconds).toBeGreaterThanOrEqual(0.3);
      expect(result.requestsPerSecond).toBeCloseTo(result.requests / result.seconds, 6);
      expect(result.p99Ms).toBeGreaterThanOrEqual(result.p50Ms);
    }
    // A batched request waits for the window, then for one call of 16: well under the
    // unbatched wait behind 15 other calls.
    expect(batched.p99Ms).toBeLessThan(unbatched.p50Ms);

    expect(progress).toEqual(['without batching', 'with rx-batcher']); // one report per 250 virtual ms
    expect(formatTable([unbatched, batched]).split('\n')).toHaveLength(3);
  });
});
