// Running work inside a span: the span ends when the work does, errors are recorded on it,
// and the work sees it as the active span (so nested spans and injected headers follow).
import { Attributes, Context, context, Span, SpanKind, SpanStatusCode, Tracer, trace } from '@opentelemetry/api';

export interface SpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** Parent context, e.g. from contextFromHeaders(); default: the active one. */
  parent?: Context;
  /** A span started earlier (under `parent`) to run the work in and end, instead of a new one. */
  started?: Span;
}

export async function withSpan<T>(tracer: Tracer, name: string, opts: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = opts.started ?? tracer.startSpan(name, { attributes: opts.attributes, kind: opts.kind }, parent);
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await work(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

export { SpanKind };
