import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { runInstrumentedLoad } from '../../examples/opentelemetry/app';
import { METRICS } from '../../lib/otel';

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

// Runs the recipe's app for real (real timers, the SDK's in-memory exporters). Batch sizes
// depend on timing, so the checks are the ones that hold for any batching: every caller's span
// is linked from exactly one batch span, and the metrics add up to the batcher's own stats.
describe('examples/opentelemetry', () => {
  it('links every caller span from its batch span, and the metrics agree with stats()', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const stats = await runInstrumentedLoad({ meter: meterProvider.getMeter('t'), tracer: tracerProvider.getTracer('t'), requests: 100 });
    expect(stats).toMatchObject({ succeeded: 98, failed: 2 });

    const spans = exporter.getFinishedSpans();
    const callers = spans.filter((s) => s.name === 'handle request');
    const batches = spans.filter((s) => s.name === 'batch scorer');
    expect(callers).toHaveLength(100);
    expect(batches).toHaveLength(stats.batches);
    const linked = batches.flatMap((b) => b.links.map((l) => l.context.spanId)).sort();
    expect(linked).toEqual(callers.map((c) => c.spanContext().spanId).sort());
    expect(batches.map((b) => b.links.length)).toEqual(batches.map((b) => b.attributes['rxbatcher.batch.size']));

    const { resourceMetrics } = await reader.collect();
    const byName = new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
    const sizes = byName.get(METRICS.batchSize)!.dataPoints as DataPoint<Histogram>[];
    expect(sizes.reduce((n, p) => n + p.value.count, 0)).toBe(stats.batches);
    expect(sizes.reduce((n, p) => n + p.value.sum!, 0)).toBe(100);
    const waits = byName.get(METRICS.queueWait)!.dataPoints as DataPoint<Histogram>[];
    expect(waits.reduce((n, p) => n + p.value.count, 0)).toBe(100);
    const outcomes = Object.fromEntries((byName.get(METRICS.requests)!.dataPoints as DataPoint<number>[]).map((p) => [p.attributes['rxbatcher.request.outcome'], p.value]));
    expect(outcomes).toEqual({ succeeded: 98, failed: 2 });
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
  });
});
