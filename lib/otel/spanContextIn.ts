import { isSpanContextValid, trace, type Context, type Span, type SpanContext } from '@opentelemetry/api';

/**
 * Finds the caller's span in a call's `context` (`run(x, { context })`): an OpenTelemetry
 * `Context` (e.g. `context.active()`), a `Span`, a `SpanContext`, or an object with one of
 * those under `otel`. A `SpanContext` is a plain object, so it is the one to pass when the call
 * goes through a broker (the codec copies it to the worker). Returns `undefined` when there is
 * none, or it is not valid.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * await batcher.run(x, { context: trace.getActiveSpan()?.spanContext() });
 * spanContextIn(trace.getActiveSpan()?.spanContext()); // the same SpanContext
 * ```
 */
export function spanContextIn(value: unknown): SpanContext | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const found = fromValue(value) ?? fromValue((value as { otel?: unknown }).otel);
  return found !== undefined && isSpanContextValid(found) ? found : undefined;
}

function fromValue(value: unknown): SpanContext | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (typeof (value as Context).getValue === 'function') return trace.getSpanContext(value as Context);
  if (typeof (value as Span).spanContext === 'function') return (value as Span).spanContext();
  const candidate = value as SpanContext;
  if (typeof candidate.traceId === 'string' && typeof candidate.spanId === 'string' && typeof candidate.traceFlags === 'number') return candidate;
  return undefined;
}
