// A service process for propagation.test.ts: opens one span named SPAN_NAME as service
// SERVICE_NAME, continuing the trace in TRACE_HEADERS when given, and prints the headers
// that carry its own span onwards. Exports to OTEL_EXPORTER_OTLP_ENDPOINT on exit.
const { initTracing, contextFromHeaders, traceHeaders, withSpan } = require('../dist');

const tracing = initTracing(process.env.SERVICE_NAME);
const parent = process.env.TRACE_HEADERS ? contextFromHeaders(JSON.parse(process.env.TRACE_HEADERS)) : undefined;
withSpan(tracing.tracer, process.env.SPAN_NAME, { parent, attributes: { 'temper.step': 3 } }, async () => {
  process.stdout.write(JSON.stringify(traceHeaders()));
})
  .then(() => tracing.shutdown())
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
