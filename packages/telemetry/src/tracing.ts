// Tracing for one service process. Spans are exported over OTLP/HTTP when an endpoint is
// configured (OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT for the full
// URL); without one, spans are still created, so trace ids reach logs and messages, but
// nothing leaves the process.
import { trace, Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export interface Tracing {
  tracer: Tracer;
  /** Where spans go, or null when none is configured. */
  endpoint: string | null;
  /** Exports what is buffered and stops; call on shutdown so the last step's spans are not lost. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES, "k=v,k=v", is read as well). */
  attributes?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
}

export function initTracing(serviceName: string, opts: TracingOptions = {}): Tracing {
  const env = opts.env ?? process.env;
  const endpoint = tracesEndpoint(env);
  const processors: SpanProcessor[] = [];
  if (endpoint) {
    // Short delays: a training step is seconds long and a trace should show up while it is relevant.
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), { scheduledDelayMillis: 500 }));
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'service.namespace': 'temper',
      ...parseAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
      ...opts.attributes,
    }),
    spanProcessors: processors,
  });
  // Installs the W3C trace-context propagator and an AsyncLocalStorage context manager.
  provider.register();
  return {
    tracer: trace.getTracer(`temper.${serviceName}`),
    endpoint,
    shutdown: () => provider.shutdown(),
  };
}

export function tracesEndpoint(env: NodeJS.ProcessEnv): string | null {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/traces';
  return null;
}

function parseAttributes(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return out;
}
