// Trace context in gRPC metadata: clients send the active context's traceparent with every
// call; handlers continue the caller's trace from the call's metadata.
import * as grpc from '@grpc/grpc-js';
import { Context } from '@opentelemetry/api';
import { contextFromHeaders, traceHeaders } from '@temper/telemetry';

/** A client interceptor: `new XClient(addr, creds, { interceptors: [traceInterceptor] })`. */
export const traceInterceptor: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      for (const [k, v] of Object.entries(traceHeaders())) metadata.set(k, v);
      next(metadata, listener);
    },
  });

/** The caller's trace context, to parent a handler's span. */
export function contextFromCall(call: { metadata: grpc.Metadata }): Context {
  const headers: Record<string, string> = {};
  for (const key of ['traceparent', 'tracestate']) {
    const v = call.metadata.get(key)[0];
    if (typeof v === 'string') headers[key] = v;
  }
  return contextFromHeaders(headers);
}
