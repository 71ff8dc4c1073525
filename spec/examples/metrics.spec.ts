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

// Runs the recipe for real: a batcher under load, /metrics served on 127.0.0.1, scraped over HTTP.
describe('examples/metrics', () => {
  let app: MonitoredApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('exports queue wait, batch size and duration histograms, gauges and outcome counters on /metrics', async () => {
    app = await startMonitoredApp({ port: 0 });
    const { batcher, registry } = app;
    expect(app.metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    // 300 requests at once: 6 negative inputs fail on their own.
    const inputs = Array.from({ length: 300 }, (_, i) => (i % 50 === 7 ? -i : i));
    const pending = inputs.map((x) => batcher.run(x).then(() => 'ok', () => 'failed'));
    // One cancelled while queued, one refused for bad call options.
    const abort = new AbortController();
    const cancelled = batcher.run(1, { signal: abort.signal }).catch((e: unknown) => e);
    abort.abort();
    const refused = batcher.run(1, { timeoutMs: -1 }).catch((e: unknown) => e);

    // The queue-depth gauge is read at scrape time: it shows the backlog right now.
    const queuedNow = batcher.stats().queued;
    expect(queuedNow).toBeGreaterThan(0);
    expect(parseMetrics(await registry.getSingleMetricAsString('rx_batcher_queue_depth')).get('rx_batcher_queue_depth{batcher="scorer"}')).toBe(queuedNow);

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

    // Histograms: one batch-size sample per batch, one queue-wait sample per dispatched request.
    expect(stats.batches).toBeLessThan(300);
    expect(m.get(`rx_batcher_batch_size_count{${label}}`)).toBe(stats.batches);
    expect(m.get(`rx_batcher_batch_size_sum{${label}}`)).toBe(300);
    expect(m.get(`rx_batcher_batch_size_bucket{le="32",${label}}`)).toBe(stats.batches);
    expect(m.get(`rx_batcher_batch_duration_seconds_count{${label}}`)).toBe(stats.batches);
    expect(m.get(`rx_batcher_batch_duration_seconds_sum{${label}}`)).toBeGreaterThan(stats.batches * 0.002 * 0.9);
    expect(m.get(`rx_batcher_queue_wait_seconds_count{${label}}`)).toBe(300);
    expect(m.get(`rx_batcher_queue_wait_seconds_sum{${label}}`)).toBeGreaterThan(0);
    const reasons = ['full', 'delay', 'flush', 'drain'].map((r) => m.get(`rx_batcher_batches_total{${label},reason="${r}"}`) ?? NaN);
    expect(reasons.reduce((a, b) => a + b, 0)).toBe(stats.batches);

    // Idle now: both gauges back at 0.
    expect(m.get(`rx_batcher_queue_depth{${label}}`)).toBe(0);
    expect(m.get(`rx_batcher_in_flight_requests{${label}}`)).toBe(0);

    expect((await fetch(app.metrics.url.replace('/metrics', '/other'))).status).toBe(404);
  });
});
