import { formatTable, runQuickstart } from '../../examples/quickstart/quickstart';

// Runs the demo's real code with real timers against the simulated model, briefly.
describe('examples/quickstart (npm run demo:quickstart)', () => {
  it('serves the same load with and without batching, and batching forms real batches', async () => {
    const progress: string[] = [];
    const [unbatched, batched] = await runQuickstart({
      clients: 16,
      durationMs: 300,
      onProgress: (label) => progress.push(label),
    });
    expect(unbatched.label).toBe('without batching');
    expect(unbatched.requests).toBeGreaterThan(0);
    expect(unbatched.meanBatchSize).toBe(1);
    expect(batched.label).toBe('with rx-batcher');
    expect(batched.requests).toBeGreaterThan(unbatched.requests);
    expect(batched.meanBatchSize).toBeGreaterThan(1);
    expect(progress).toContain('with rx-batcher');
    expect(formatTable([unbatched, batched]).split('\n')).toHaveLength(3);
  });
});
