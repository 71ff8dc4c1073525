/**
 * The recipe's app: a batched stand-in model, instrumented with rx-batcher/otel, and callers
 * that each run inside a span of their own (as an HTTP handler would).
 */
import type { Meter, Tracer } from '@opentelemetry/api';
import { map, timer, type SchedulerLike } from 'rxjs';
import { Batcher } from 'rx-batcher';
import { instrument } from 'rx-batcher/otel';

/** Options of {@link runInstrumentedLoad}. */
export interface LoadOptions {
  readonly meter: Meter;
  readonly tracer: Tracer;
  /** How many callers (each in its own span). Default 100. */
  readonly requests?: number;
  /** The batcher's and the model's clock: tests pass a virtual-time scheduler. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Starts an instrumented batcher around a stand-in model (2 ms + 0.05 ms per input; a
 * negative input fails on its own), sends `requests` calls, each from inside a `handle request`
 * span whose context it passes along, then drains the batcher. Returns the batcher's stats.
 *
 * @example
 * ```ts
 * const stats = await runInstrumentedLoad({ meter: metrics.getMeter('app'), tracer: trace.getTracer('app') });
 * ```
 */
export async function runInstrumentedLoad(options: LoadOptions) {
  const { tracer, scheduler } = options;
  const batcher = new Batcher<number, number>({
    name: 'scorer',
    maxBatchSize: 32,
    maxDelayMs: 2,
    scheduler,
    runBatch: (xs) => timer(2 + 0.05 * xs.length, scheduler).pipe(map(() => xs.map((x) => (x < 0 ? new Error(`negative input ${x}`) : Math.sqrt(x))))),
  });
  const instrumentation = instrument(batcher, { meter: options.meter, tracer, now: scheduler && (() => scheduler.now()) });

  const requests = options.requests ?? 100;
  const calls = Array.from({ length: requests }, (_, i) =>
    tracer.startActiveSpan('handle request', (span) =>
      // The caller's span travels in the call's context (a SpanContext is plain data, so it
      // crosses a broker too); the batch span links to it.
      batcher.run(i % 50 === 49 ? -i : i, { context: span.spanContext() }).then(
        () => span.end(),
        () => span.end(),
      ),
    ),
  );
  await Promise.all(calls);
  await batcher.stop({ drain: true });
  instrumentation.stop();
  return batcher.stats();
}
