/**
 * `npx tsx examples/opentelemetry/main.ts`: runs some load through an instrumented batcher and
 * prints its metrics and spans with the OpenTelemetry SDK's console exporters (no collector
 * needed).
 */
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { runInstrumentedLoad } from './app';

async function main(): Promise<void> {
  const meterProvider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 60_000 })],
  });
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });

  const stats = await runInstrumentedLoad({
    meter: meterProvider.getMeter('example'),
    tracer: tracerProvider.getTracer('example'),
    requests: 100,
  });
  console.log(`${stats.succeeded} succeeded, ${stats.failed} failed, in ${stats.batches} batches`);
  await meterProvider.shutdown(); // exports the metrics once more, then stops
  await tracerProvider.shutdown();
}

void main();
