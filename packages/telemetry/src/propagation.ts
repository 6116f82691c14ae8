// Trace context across process boundaries: the W3C traceparent (and tracestate) header,
// carried in gRPC metadata and NATS message headers alike as a plain string record.
import { Context, context, propagation, trace } from '@opentelemetry/api';

export type Carrier = Record<string, string>;

/** The active context's trace headers (empty when there is no span). */
export function traceHeaders(ctx: Context = context.active()): Carrier {
  const carrier: Carrier = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** A context whose parent is the span the headers describe (the active one when none). */
export function contextFromHeaders(headers: Carrier | undefined): Context {
  return headers ? propagation.extract(context.active(), headers) : context.active();
}

/** The active trace and span ids, for structured logs. */
export function traceIds(ctx: Context = context.active()): { trace_id?: string; span_id?: string } {
  const sc = trace.getSpanContext(ctx);
  return sc ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}
