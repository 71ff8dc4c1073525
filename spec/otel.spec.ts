/**
 * rx-batcher/otel with the OpenTelemetry SDK's own in-memory reader and span exporter: a
 * scripted run in virtual time gives exact metric points and spans.
 */
import { SpanStatusCode, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Batcher } from '../lib';
import { instrument, METRICS, spanContextIn } from '../lib/otel';
import { memoryTransport, remoteBatcher, serveBatches } from '../lib/remote';
import { ManualScheduler } from './helpers/manualScheduler';
import { scriptedTransport } from './remote/support/scriptedTransport';
import { outcome, settleMicrotasks } from './helpers/recording';
import { quiet } from './helpers/virtualClock';

/** A reader the test collects from when it likes. */
class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

function telemetry() {
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const collect = async (): Promise<Map<string, MetricData>> => {
    const { resourceMetrics } = await reader.collect();
    return new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
  };
  return { meter: meterProvider.getMeter('test'), tracer: tracerProvider.getTracer('test'), exporter, collect };
}

const spanOf = (n: number): SpanContext => ({ traceId: `${'a'.repeat(31)}${n}`, spanId: `${'b'.repeat(15)}${n}`, traceFlags: TraceFlags.SAMPLED });

/** Sum and count of a histogram, by the value of one attribute (or overall). */
function histogram(metric: MetricData | undefined, by?: string): Record<string, { count: number; sum: number }> {
  const out: Record<string, { count: number; sum: number }> = {};
  for (const p of (metric?.dataPoints ?? []) as DataPoint<Histogram>[]) {
    const key = by === undefined ? 'all' : String(p.attributes[by]);
    const entry = (out[key] ??= { count: 0, sum: 0 });
    entry.count += p.value.count;
    entry.sum = Math.round((entry.sum + p.value.sum!) * 1e6) / 1e6;
  }
  return out;
}

function points(metric: MetricData | undefined, by: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of (metric?.dataPoints ?? []) as DataPoint<number>[]) out[String(p.attributes[by])] = p.value;
  return out;
}

describe('instrument(batcher, { meter, tracer })', () => {
  it('records exact histograms, outcome counts, gauges and one linked span per batch for a scripted run', async () => {
    const { meter, tracer, exporter, collect } = telemetry();
    const scheduler = new ManualScheduler();
    const batcher = new Batcher<number, number>({
      name: 'scorer',
      maxBatchSize: 4,
      maxDelayMs: 10,
      scheduler,
      runBatch: (xs) => new Promise<(number | Error)[]>((resolve, reject) => scheduler.schedule(() => {
        if (xs.includes(100)) reject(new Error('model crashed'));
        else resolve(xs.map((x) => (x < 0 ? new Error(`negative ${x}`) : x * 2)));
      }, 5)),
    });
    const before = outcome(batcher.run(0)); // settles before instrumenting: not recorded
    scheduler.advance(15);
    await settleMicrotasks();
    expect(before.value).toBe(0);

    const instrumentation = instrument(batcher, { meter, tracer, now: () => scheduler.now(), attributes: { 'deployment.environment': 'test' } });
    // Batch 1, full at once at t=15: four callers, two of them in span A, one failing in its slot.
    const b1 = [batcher.run(1), batcher.run(2, { context: spanOf(1) }), batcher.run(-3, { context: spanOf(1) }), batcher.run(4)].map(outcome);
    // Batch 2: its window closes at t=25 while batch 1 runs; it starts when the slot frees.
    scheduler.advance(1);
    const b2 = [batcher.run(5, { context: { otel: spanOf(2) } }), batcher.run(6)].map(outcome);
    const m1 = await collect();
    expect(points(m1.get(METRICS.queueSize), 'rxbatcher.name')).toEqual({ scorer: 2 });
    expect(points(m1.get(METRICS.batchesInFlight), 'rxbatcher.name')).toEqual({ scorer: 1 });
    scheduler.advance(4); // t=20: batch 1 done; batch 2 is not due before t=26
    await settleMicrotasks();
    scheduler.advance(6); // t=26: batch 2 starts (waited 10 ms each)
    await settleMicrotasks();
    scheduler.advance(5); // t=31: batch 2 done
    await settleMicrotasks();
    // Batch 3 throws; one call times out alone; one is refused (a bad priority).
    const b3 = outcome(batcher.run(100));
    const late = outcome(batcher.run(7, { timeoutMs: 3 }));
    scheduler.advance(3); // t=34: 7's deadline passes while it waits in the window
    scheduler.advance(7); // t=41: the window closes, batch 3 (just 100) runs
    await settleMicrotasks();
    scheduler.advance(5);
    await settleMicrotasks();
    await expect(batcher.run(8, { priority: 0.5 })).rejects.toThrow('`priority` must be an integer');
    await batcher.stop();
    expect([...b1, ...b2].map((o) => o.value ?? (o.error as Error).message)).toEqual([2, 4, 'negative -3', 8, 10, 12]);
    expect((b3.error as Error).message).toBe('model crashed');
    expect((late.error as Error).name).toBe('RequestTimeoutError');

    const m = await collect();
    expect(points(m.get(METRICS.requests), 'rxbatcher.request.outcome')).toEqual({ succeeded: 5, failed: 2, timed_out: 1, rejected: 1 });
    expect(histogram(m.get(METRICS.batchSize), 'rxbatcher.batch.outcome')).toEqual({ succeeded: { count: 2, sum: 6 }, failed: { count: 1, sum: 1 } });
    expect(histogram(m.get(METRICS.batchSize), 'rxbatcher.batch.reason')).toEqual({ full: { count: 1, sum: 4 }, delay: { count: 2, sum: 3 } });
    expect(histogram(m.get(METRICS.batchDuration))).toEqual({ all: { count: 3, sum: 0.015 } });
    expect(histogram(m.get(METRICS.batchWeight))).toEqual({ all: { count: 3, sum: 7 } });
    // Waits: batch 1: 0 ms ×4; batch 2: 10 ms ×2; batch 3: 10 ms.
    expect(histogram(m.get(METRICS.queueWait))).toEqual({ all: { count: 7, sum: 0.03 } });
    expect(m.get(METRICS.queueWait)!.descriptor.unit).toBe('s');
    expect(points(m.get(METRICS.queueSize), 'rxbatcher.name')).toEqual({ scorer: 0 });
    for (const metric of m.values()) {
      for (const p of metric.dataPoints) expect(p.attributes).toMatchObject({ 'rxbatcher.name': 'scorer', 'deployment.environment': 'test' });
    }

    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.name, s.attributes['rxbatcher.batch.size'], s.attributes['rxbatcher.batch.reason'], s.status.code])).toEqual([
      ['batch scorer', 4, 'full', SpanStatusCode.UNSET],
      ['batch scorer', 2, 'delay', SpanStatusCode.UNSET],
      ['batch scorer', 1, 'delay', SpanStatusCode.ERROR],
    ]);
    expect(spans.map((s) => s.links.map((l) => l.context.spanId))).toEqual([[spanOf(1).spanId], [spanOf(2).spanId], []]);
    expect(spans.map((s) => s.duration[0] * 1000 + s.duration[1] / 1e6)).toEqual([5, 5, 5]);
    instrumentation.stop();
  });

  it("counts bisections and their extra calls (isolateFailures: 'bisect'); the bisected batch's span is an error", async () => {
    const { meter, tracer, exporter, collect } = telemetry();
    const batcher = new Batcher<number, number>({
      name: 'isolating', maxBatchSize: 4, maxDelayMs: 1000, isolateFailures: 'bisect', scheduler: new ManualScheduler(),
      runBatch: (xs) => {
        if (xs.includes(3)) throw new Error('bad input');
        return xs.map((x) => x * 2);
      },
    });
    const instrumentation = instrument(batcher, { meter, tracer });
    const calls = Promise.allSettled([1, 2, 3, 4].map((x) => batcher.run(x)));
    batcher.flush();
    expect((await calls).map((c) => c.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    await batcher.stop();
    const m = await collect();
    expect(points(m.get(METRICS.bisections), 'rxbatcher.name')).toEqual({ isolating: 1 });
    expect(points(m.get(METRICS.bisectionCalls), 'rxbatcher.name')).toEqual({ isolating: 4 }); // [1,2] ok, [3,4] fails, [3] fails, [4] ok
    expect(points(m.get(METRICS.requests), 'rxbatcher.request.outcome')).toEqual({ succeeded: 3, failed: 1 });
    expect(exporter.getFinishedSpans().map((s) => [s.attributes['rxbatcher.batch.outcome'], s.status.code])).toEqual([['failed', SpanStatusCode.ERROR]]);
    instrumentation.stop();
  });

  it('stop() ends recording and unregisters the gauges', async () => {
    const { meter, tracer, exporter, collect } = telemetry();
    const batcher = new Batcher<number, number>({ name: 'quiet', maxBatchSize: 2, runBatch: (xs) => [...xs] });
    const instrumentation = instrument(batcher, { meter, tracer });
    await batcher.run(1);
    instrumentation.stop();
    await batcher.run(2);
    const m = await collect();
    expect(points(m.get(METRICS.requests), 'rxbatcher.request.outcome')).toEqual({ succeeded: 1 });
    expect(m.get(METRICS.queueSize)?.dataPoints ?? []).toEqual([]);
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    await batcher.stop();
  });

  it('works on a worker and a producer: the caller’s SpanContext crosses the broker and links the worker’s batch span', async () => {
    const { meter, tracer, exporter, collect } = telemetry();
    const transport = memoryTransport();
    const worker = await serveBatches<number, number>(transport, 'otel', (xs) => xs.map((x) => x + 1), { name: 'worker', maxBatchSize: 8, maxDelayMs: 1 });
    const producer = remoteBatcher<number, number>(transport, 'otel', { name: 'producer' });
    const forWorker = instrument(worker, { meter, tracer });
    const forProducer = instrument(producer, { meter, tracer });
    await expect(Promise.all([producer.run(1, { context: spanOf(7) }), producer.run(2)])).resolves.toEqual([2, 3]);
    await quiet();
    await producer.stop();
    await worker.stop();
    const m = await collect();
    expect(points(m.get(METRICS.requests), 'rxbatcher.name')).toEqual({ worker: 2, producer: 2 });
    const workerSpans = exporter.getFinishedSpans().filter((s) => s.name === 'batch worker');
    expect(workerSpans.flatMap((s) => s.links.map((l) => l.context))).toEqual([spanOf(7)]);
    forWorker.stop();
    forProducer.stop();
  });

  it("counts a producer's connection drops and returns, re-sent requests and dropped replies, from the call on", async () => {
    const { meter, tracer, collect } = telemetry();
    const s = scriptedTransport(true);
    const producer = remoteBatcher<number, number>(s.transport, 'double', { name: 'producer', onError: () => undefined });
    const pending = [producer.run(1), producer.run(2), producer.run(3)];
    await quiet();
    s.event({ type: 'disconnected', connection: 'replies', error: new Error('before instrumenting: not counted') });
    const instrumentation = instrument(producer, { meter, tracer });
    s.event({ type: 'disconnected', connection: 'replies', error: new Error('read ECONNRESET') });
    s.event({ type: 'reconnected', connection: 'replies' });
    s.event({ type: 'resubscribed', connection: 'replies' });
    await quiet();
    const [batch] = s.sent;
    for (const m of batch) s.answer(m);
    s.answer(batch[1]);
    s.frame(new Uint8Array([1, 2, 3]));
    await Promise.all(pending);
    const m = await collect();
    expect(points(m.get(METRICS.brokerConnectionEvents), 'rxbatcher.broker.event')).toEqual({ disconnected: 1, reconnected: 1, resubscribed: 1 });
    expect(points(m.get(METRICS.resent), 'rxbatcher.name')).toEqual({ producer: 2 });
    expect(points(m.get(METRICS.dropped), 'rxbatcher.remote.drop_reason')).toEqual({ duplicate: 1, malformed: 1 });
    instrumentation.stop();
    await producer.stop();
  });

  it("counts a worker's redeliveries, reclaims and refusals after maxDeliveries", async () => {
    jest.useFakeTimers();
    try {
      const { meter, tracer, collect } = telemetry();
      const transport = memoryTransport();
      // The poison input hangs its batch until the worker stops; nothing renews the claim.
      const worker = await serveBatches<number, number>(transport, 'poison', (xs, ctx) => new Promise<number[]>((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))), {
        name: 'worker', maxBatchSize: 1, maxConcurrentBatches: 8, claimIdleMs: 100, touchEveryMs: 0, maxDeliveries: 3,
      });
      const instrumentation = instrument(worker, { meter, tracer });
      const producer = remoteBatcher<number, number>(transport, 'poison', { timeoutMs: 5000 });
      const call = outcome(producer.run(9));
      await jest.advanceTimersByTimeAsync(301);
      expect(call.error).toMatchObject({ kind: 'deliveries-exhausted' });
      const m = await collect();
      expect(points(m.get(METRICS.deliveries), 'rxbatcher.remote.delivery')).toEqual({ redelivered: 3, reclaimed: 3, exhausted: 1 });
      instrumentation.stop();
      await producer.stop();
      await worker.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('spanContextIn(context)', () => {
  it('finds a SpanContext, a Span, an OpenTelemetry Context or { otel }, and ignores anything else', async () => {
    const { tracer } = telemetry();
    const span = tracer.startSpan('caller');
    const { context, trace } = await import('@opentelemetry/api');
    expect(spanContextIn(spanOf(3))).toEqual(spanOf(3));
    expect(spanContextIn(span)).toEqual(span.spanContext());
    expect(spanContextIn(trace.setSpan(context.active(), span))).toEqual(span.spanContext());
    expect(spanContextIn({ otel: span })).toEqual(span.spanContext());
    for (const other of [undefined, null, 'trace-id', 42, {}, { traceId: 'x', spanId: 'y', traceFlags: 1 }]) expect(spanContextIn(other)).toBeUndefined();
    span.end();
  });
});
