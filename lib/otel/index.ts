/**
 * `rx-batcher/otel`: OpenTelemetry metrics and spans for a `Batcher`, a `remoteBatcher`
 * producer or a `serveBatches` worker. Needs `@opentelemetry/api` (an optional peer
 * dependency); the SDK and exporters are the application's choice.
 *
 * @module
 */
export { instrument, METRICS, type Instrumentable, type Instrumentation, type InstrumentOptions } from './instrument.js';
export { spanContextIn } from './spanContextIn.js';
