import { VirtualTimeScheduler } from 'rxjs';
import type { BatchReport } from '../../lib';
import { startMonitoredApp, type MonitoredApp } from '../../examples/metrics/app';

/** Parses Prometheus text format into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

// Runs the recipe for real: a batcher under load, /metrics served on 127.0.0.1, scraped over
// HTTP. The batcher and its stand-in model run on a virtual clock that moves only in
// `scheduler.flush()`, so the backlog, the batches and their times are the same on any machine.
describe('examples/metrics', () => {
  let app: MonitoredApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('exports queue wait, batch size and duration histograms, gauges and outcome counters on /metrics', async () => {
    const scheduler = new VirtualTimeScheduler();
    app = await startMonitoredApp({ port: 0, scheduler });
    const { batcher, registry } = app;
    expect(app.metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const reports = new Set<BatchReport>();
    batcher.stats$.subscribe(({ lastBatch }) => lastBatch && reports.add(lastBatch));

    // 300 requests at once: 6 negative inputs fail on their own.
    const inputs = Array.from({ length: 300 }, (_, i) => (i % 50 === 7 ? -i : i));
    const pending = inputs.map((x) => batcher.run(x).then(() => 'ok', () => 'failed'));
    // One cancelled while queued, one refused for bad call options.
    const abort = new AbortController();
    const cancelled = batcher.run(1, { signal: abort.signal }).catch((e: unknown) => e);
    abort.abort();
    const refused = batcher.run(1, { timeoutMs: -1 }).catch((e: unknown) => e);

    // The clock has not moved: at most the first full batch (32) is running, the rest wait. The
    // gauges are read at scrape time: they show the backlog right now.
    const now = batcher.stats();
    expect(now.queued + now.inFlight).toBe(300);
    expect(now.inFlight).toBeLessThanOrEqual(32);
    const gauge = async (name: string) => parseMetrics(await registry.getSingleMetricAsString(name)).get(`${name}{batcher="scorer"}`);
    expect(await gauge('rx_batcher_queue_depth')).toBe(now.queued);
    expect(await gauge('rx_batcher_in_flight_requests')).toBe(now.inFlight);

    scheduler.flush(); // runs every batch, one after another, in virtual time
    const outcomes = await Promise.all(pending);
    await cancelled;
    await expect(refused).resolves.toBeInstanceOf(RangeError);
    expect(outcomes.filter((o) => o === 'failed')).toHaveLength(6);

    const response = await fetch(app.metrics.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const m = parseMetrics(await response.text());
    const stats = batcher.stats();
    const label = 'batcher="scorer"';

    expect(m.get(`rx_batcher_requests_total{${label},outcome="succeeded"}`)).toBe(294);
    expect(m.get(`rx_batcher_requests_total{${label},outcome="failed"}`)).toBe(6);
    expect(m.get(`rx_batcher_requests_total{${label},outcome="cancelled"}`)).toBe(1);
    expect(m.get(`rx_batcher_requests_total{${label},outcome="rejected"}`)).toBe(1);
    expect(m.get(`rx_batcher_requests_total{${label},outcome="timed_out"}`)).toBe(0);

    // All 300 were queued before the first batch finished, so every batch took the most it may:
    // nine of 32, then the last 12. One batch-size sample per batch.
    expect(stats.batchSizes).toEqual({ 32: 9, 12: 1 });
    expect(reports.size).toBe(10);
    expect(m.get(`rx_batcher_batch_size_count{${label}}`)).toBe(10);
    expect(m.get(`rx_batcher_batch_size_sum{${label}}`)).toBe(300);
    expect(m.get(`rx_batcher_batch_size_bucket{le="8",${label}}`)).toBe(0);
    expect(m.get(`rx_batcher_batch_size_bucket{le="16",${label}}`)).toBe(1);
    expect(m.get(`rx_batcher_batch_size_bucket{le="32",${label}}`)).toBe(10);
    // Durations: the model takes 2 ms + 0.05 ms per input of virtual time (2.6 to 3.6 ms), and
    // the batcher's clock counts whole ms: every batch is over 1 ms and within 5 ms.
    const durations = [...reports].map((r) => r.durationMs / 1000);
    expect(m.get(`rx_batcher_batch_duration_seconds_count{${label}}`)).toBe(10);
    expect(m.get(`rx_batcher_batch_duration_seconds_sum{${label}}`)).toBeCloseTo(durations.reduce((a, b) => a + b, 0), 9);
    expect(m.get(`rx_batcher_batch_duration_seconds_bucket{le="0.001",${label}}`)).toBe(0);
    expect(m.get(`rx_batcher_batch_duration_seconds_bucket{le="0.005",${label}}`)).toBe(10);
    // Queue waits: one sample per dispatched request; batches after the first waited for it.
    const waits = [...reports].flatMap((r) => r.queueWaitMs.map((ms) => ms / 1000));
    expect(m.get(`rx_batcher_queue_wait_seconds_count{${label}}`)).toBe(300);
    expect(m.get(`rx_batcher_queue_wait_seconds_sum{${label}}`)).toBeCloseTo(waits.reduce((a, b) => a + b, 0), 9);
    expect(m.get(`rx_batcher_queue_wait_seconds_sum{${label}}`)).toBeGreaterThanOrEqual(268 * 0.002);
    const reasons = ['full', 'delay', 'flush', 'drain'].map((r) => m.get(`rx_batcher_batches_total{${label},reason="${r}"}`) ?? NaN);
    expect(reasons.reduce((a, b) => a + b, 0)).toBe(10);
    expect(m.get(`rx_batcher_batches_total{${label},reason="full"}`)).toBe(9);

    // Idle now: both gauges back at 0.
    expect(m.get(`rx_batcher_queue_depth{${label}}`)).toBe(0);
    expect(m.get(`rx_batcher_in_flight_requests{${label}}`)).toBe(0);

    expect((await fetch(app.metrics.url.replace('/metrics', '/other'))).status).toBe(404);
  });
});
