import {
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type BatchObservableResult,
  type Link,
  type Meter,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import type { Observable } from 'rxjs';
import type { BatcherStats } from '../stats/statsSnapshot.js';
import type { BatchReport } from '../types.js';
import { spanContextIn } from './spanContextIn.js';

/**
 * What {@link instrument} needs: a `Batcher`, a `remoteBatcher` producer and a `serveBatches`
 * worker all have it.
 *
 * @example
 * ```ts
 * const target: Instrumentable = batcher; // or a producer, or a worker
 * ```
 */
export interface Instrumentable {
  /** Becomes the `rxbatcher.name` attribute and names the batch spans. */
  readonly name: string;
  /** Read by the gauges when the meter collects. */
  stats(): BatcherStats;
  /** Followed for finished batches and settled requests. */
  readonly stats$: Observable<BatcherStats>;
}

/**
 * Options of {@link instrument}.
 *
 * @example
 * ```ts
 * instrument(batcher, { meter: metrics.getMeter('scorer'), tracer: trace.getTracer('scorer') });
 * ```
 */
export interface InstrumentOptions {
  /** Where the metrics go. @default `metrics.getMeter('rx-batcher')` (a no-op until an SDK is registered) */
  readonly meter?: Meter;
  /** Where the batch spans go. @default `trace.getTracer('rx-batcher')` (a no-op until an SDK is registered) */
  readonly tracer?: Tracer;
  /** Finds a caller's span in its call's `context`, to link the batch span to it. @default {@link spanContextIn} */
  readonly spanContextOf?: (context: unknown) => SpanContext | undefined;
  /** Added to every metric point and span (e.g. `{ 'service.component': 'ranker' }`). */
  readonly attributes?: Attributes;
  /**
   * The clock a batch span's start and end are placed on, in ms since the epoch: pass the
   * batcher's `scheduler.now` when it runs on virtual time. @default `Date.now`
   */
  readonly now?: () => number;
}

/**
 * A running instrumentation; `stop()` (or `using`) ends it.
 *
 * @example
 * ```ts
 * const instrumentation = instrument(batcher, { meter });
 * instrumentation.stop();
 * ```
 */
export interface Instrumentation extends Disposable {
  /** Stops recording and unregisters the gauges' callback. */
  stop(): void;
}

/**
 * The instrument names, following the OpenTelemetry semantic-convention style: a namespace,
 * dot-separated, durations in seconds, counts with a `{unit}` annotation. Each point carries
 * `rxbatcher.name` (the batcher's name); batch metrics also `rxbatcher.batch.reason`
 * (`full`, `delay`, `flush`, `drain`) and `rxbatcher.batch.outcome` (`succeeded`, `failed`,
 * `abandoned`); the request counter `rxbatcher.request.outcome`.
 *
 * @example
 * ```ts
 * const wait = metricsData.find((m) => m.descriptor.name === METRICS.queueWait);
 * ```
 */
export const METRICS = Object.freeze({
  /** Histogram, `s`: how long each request waited in the queue before its batch started. */
  queueWait: 'rxbatcher.request.queue_wait.duration',
  /** Histogram, `{request}`: inputs per batch. */
  batchSize: 'rxbatcher.batch.size',
  /** Histogram, `s`: from the `runBatch` call to its result. */
  batchDuration: 'rxbatcher.batch.duration',
  /** Histogram, `1`: a batch's total weight (`weigh`; its size without). */
  batchWeight: 'rxbatcher.batch.weight',
  /** Counter, `{request}`: settled requests by `rxbatcher.request.outcome`. */
  requests: 'rxbatcher.requests',
  /** Counter, `{batch}`: batches whose `runBatch` call failed and were bisected (`isolateFailures: 'bisect'`). */
  bisections: 'rxbatcher.batch.bisections',
  /** Counter, `{call}`: the extra `runBatch` calls those bisections made. */
  bisectionCalls: 'rxbatcher.batch.bisection_calls',
  /**
   * Counter, `{event}`: a remote producer's or worker's broker connections that dropped or came
   * back, by `rxbatcher.broker.event` (`disconnected`, `reconnected`, `resubscribed`).
   */
  brokerConnectionEvents: 'rxbatcher.broker.connection.events',
  /** Counter, `{request}`: requests a producer sent again after its reply subscription came back. */
  resent: 'rxbatcher.remote.resent',
  /**
   * Counter, `{message}`: messages a producer or worker dropped, by `rxbatcher.remote.drop_reason`
   * (`forged`, `oversized`, `malformed`, `duplicate`).
   */
  dropped: 'rxbatcher.remote.dropped',
  /**
   * Counter, `{request}`: what a worker met beside its batches, by `rxbatcher.remote.delivery`:
   * `redelivered` (delivered before), `reclaimed` (taken over from a silent worker), `exhausted`
   * (over `maxDeliveries`), `expired` (its caller's deadline had passed), `released` (handed back
   * by a stop).
   */
  deliveries: 'rxbatcher.remote.deliveries',
  /** Counter, `{error}`: broker errors a worker recovered from. */
  brokerErrors: 'rxbatcher.broker.errors',
  /** Observable gauge, `{request}`: requests waiting in a queue now. */
  queueSize: 'rxbatcher.queue.size',
  /** Observable gauge, `{batch}`: batches running now. */
  batchesInFlight: 'rxbatcher.batch.in_flight',
});

/**
 * Stats counters recorded as they grow: [stats field, instrument, attribute, value]. A field a
 * face's stats do not have (the remote ones on a local `Batcher`) is skipped.
 */
const COUNTS = [
  ['bisections', 'bisections', undefined, undefined],
  ['bisectionCalls', 'bisectionCalls', undefined, undefined],
  ['disconnects', 'brokerConnectionEvents', 'rxbatcher.broker.event', 'disconnected'],
  ['reconnects', 'brokerConnectionEvents', 'rxbatcher.broker.event', 'reconnected'],
  ['resubscribes', 'brokerConnectionEvents', 'rxbatcher.broker.event', 'resubscribed'],
  ['resent', 'resent', undefined, undefined],
  ['forged', 'dropped', 'rxbatcher.remote.drop_reason', 'forged'],
  ['oversized', 'dropped', 'rxbatcher.remote.drop_reason', 'oversized'],
  ['malformed', 'dropped', 'rxbatcher.remote.drop_reason', 'malformed'],
  ['duplicatesDropped', 'dropped', 'rxbatcher.remote.drop_reason', 'duplicate'],
  ['redeliveries', 'deliveries', 'rxbatcher.remote.delivery', 'redelivered'],
  ['reclaimed', 'deliveries', 'rxbatcher.remote.delivery', 'reclaimed'],
  ['exhausted', 'deliveries', 'rxbatcher.remote.delivery', 'exhausted'],
  ['expired', 'deliveries', 'rxbatcher.remote.delivery', 'expired'],
  ['released', 'deliveries', 'rxbatcher.remote.delivery', 'released'],
  ['brokerErrors', 'brokerErrors', undefined, undefined],
] as const;

const OUTCOMES = [
  ['succeeded', 'succeeded'],
  ['failed', 'failed'],
  ['cancelled', 'cancelled'],
  ['timedOut', 'timed_out'],
  ['rejected', 'rejected'],
] as const;

/** Sub-millisecond to seconds: batching waits are short. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * Records a batcher's (or a producer's, or a worker's) work with OpenTelemetry: queue wait,
 * batch size, batch duration and weight as histograms, settled requests by outcome as a
 * counter, queue length and running batches as observable gauges (see {@link METRICS}), and
 * one span per finished batch (`batch <name>`), linked to the span of every caller that passed
 * one in its per-call `context` (see {@link spanContextIn}). Only what happens after the call is
 * recorded, until the target stops (its `stats$` completes) or `stop()` is called.
 *
 * @example
 * ```ts
 * import { metrics, trace } from '@opentelemetry/api';
 * import { instrument } from 'rx-batcher/otel';
 *
 * const instrumentation = instrument(batcher, { meter: metrics.getMeter('app'), tracer: trace.getTracer('app') });
 * await batcher.run(x, { context: trace.getActiveSpan()?.spanContext() });
 * instrumentation.stop();
 * ```
 */
export function instrument(target: Instrumentable, options: InstrumentOptions = {}): Instrumentation {
  const meter = options.meter ?? metrics.getMeter('rx-batcher');
  const tracer = options.tracer ?? trace.getTracer('rx-batcher');
  const spanContextOf = options.spanContextOf ?? spanContextIn;
  const now = options.now ?? Date.now;
  const attributes: Attributes = { 'rxbatcher.name': target.name, ...options.attributes };

  const queueWait = meter.createHistogram(METRICS.queueWait, {
    unit: 's', description: 'Time each request waited in the queue before its batch started.',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const batchSize = meter.createHistogram(METRICS.batchSize, {
    unit: '{request}', description: 'Inputs per batch.', advice: { explicitBucketBoundaries: SIZE_BUCKETS },
  });
  const batchDuration = meter.createHistogram(METRICS.batchDuration, {
    unit: 's', description: 'Time from the runBatch call to its result.', advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const batchWeight = meter.createHistogram(METRICS.batchWeight, { unit: '1', description: 'Total weight of a batch (its size without weigh).' });
  const requests = meter.createCounter(METRICS.requests, { unit: '{request}', description: 'Settled requests, by outcome.' });
  const counters = {
    bisections: meter.createCounter(METRICS.bisections, { unit: '{batch}', description: 'Batches whose runBatch call failed and were split to isolate the failing input.' }),
    bisectionCalls: meter.createCounter(METRICS.bisectionCalls, { unit: '{call}', description: 'Extra runBatch calls made by bisection.' }),
    brokerConnectionEvents: meter.createCounter(METRICS.brokerConnectionEvents, { unit: '{event}', description: 'Broker connections that dropped or came back.' }),
    resent: meter.createCounter(METRICS.resent, { unit: '{request}', description: 'Requests sent again after the reply subscription came back.' }),
    dropped: meter.createCounter(METRICS.dropped, { unit: '{message}', description: 'Messages dropped: forged, oversized, malformed or duplicate.' }),
    deliveries: meter.createCounter(METRICS.deliveries, { unit: '{request}', description: 'Redelivered, reclaimed, exhausted, expired or released requests.' }),
    brokerErrors: meter.createCounter(METRICS.brokerErrors, { unit: '{error}', description: 'Broker errors recovered from.' }),
  };
  const queueSize = meter.createObservableGauge(METRICS.queueSize, { unit: '{request}', description: 'Requests waiting in a queue.' });
  const inFlight = meter.createObservableGauge(METRICS.batchesInFlight, { unit: '{batch}', description: 'Batches running.' });

  const observe = (result: BatchObservableResult): void => {
    const s = target.stats();
    result.observe(queueSize, s.queued, attributes);
    result.observe(inFlight, s.batchesInFlight, attributes);
  };
  meter.addBatchObservableCallback(observe, [queueSize, inFlight]);

  const recordBatch = (batch: BatchReport): void => {
    const batchAttributes: Attributes = { ...attributes, 'rxbatcher.batch.reason': batch.reason, 'rxbatcher.batch.outcome': batch.outcome };
    batchSize.record(batch.size, batchAttributes);
    batchDuration.record(batch.durationMs / 1000, batchAttributes);
    batchWeight.record(batch.weight, batchAttributes);
    for (const waited of batch.queueWaitMs) queueWait.record(waited / 1000, attributes);

    const end = now();
    const span = tracer.startSpan(`batch ${target.name}`, {
      kind: SpanKind.INTERNAL,
      startTime: end - batch.durationMs,
      links: linksTo(batch.contexts, spanContextOf),
      attributes: {
        ...attributes,
        'rxbatcher.batch.id': batch.batchId,
        'rxbatcher.batch.size': batch.size,
        'rxbatcher.batch.weight': batch.weight,
        'rxbatcher.batch.reason': batch.reason,
        'rxbatcher.batch.outcome': batch.outcome,
        ...(batch.partition !== undefined ? { 'rxbatcher.batch.partition': batch.partition } : {}),
      },
    });
    if (batch.outcome === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: 'runBatch failed' });
    span.end(end);
  };

  let previous: BatcherStats | undefined;
  const subscription = target.stats$.subscribe((s) => {
    if (previous !== undefined) {
      for (const [key, outcome] of OUTCOMES) {
        const settled = s[key] - previous[key];
        if (settled > 0) requests.add(settled, { ...attributes, 'rxbatcher.request.outcome': outcome });
      }
      const fresh = s as unknown as Record<string, unknown>;
      const before = previous as unknown as Record<string, unknown>;
      for (const [field, instrumentKey, attribute, value] of COUNTS) {
        const current = fresh[field];
        const last = before[field];
        if (typeof current !== 'number' || typeof last !== 'number' || current <= last) continue;
        counters[instrumentKey].add(current - last, attribute === undefined ? attributes : { ...attributes, [attribute]: value });
      }
      if (s.lastBatch !== undefined && s.lastBatch !== previous.lastBatch) recordBatch(s.lastBatch);
    }
    previous = s; // the first snapshot is the baseline: only what happens from now on is recorded
  });

  const stop = (): void => {
    subscription.unsubscribe();
    meter.removeBatchObservableCallback(observe, [queueSize, inFlight]);
  };
  return { stop, [Symbol.dispose]: stop };
}

/** One link per distinct caller span found in the batch's contexts. */
function linksTo(contexts: readonly unknown[], spanContextOf: (context: unknown) => SpanContext | undefined): Link[] {
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const context of contexts) {
    if (context === undefined) continue;
    const spanContext = spanContextOf(context);
    if (spanContext === undefined) continue;
    const key = `${spanContext.traceId}/${spanContext.spanId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    links.push({ context: spanContext });
  }
  return links;
}
