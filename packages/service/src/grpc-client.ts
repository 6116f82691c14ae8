// What every gRPC client of a Temper service is made with: the channel's credentials (TLS,
// or plaintext on loopback when asked for), the caller's bearer token when it has one, and
// the trace context in every call's metadata.
import * as grpc from '@grpc/grpc-js';
import { bearerTokenInterceptor } from './auth';
import { traceInterceptor } from './grpc-trace';
import { ClientSecurity, clientCredentials, clientSecurityFromEnv } from './transport-security';

export interface ClientAuthOptions {
  /** TLS files and server name, or plaintext on loopback (default: from the environment). */
  security?: ClientSecurity;
  /** The bearer token to send (default: TEMPER_AUTH_TOKEN; '' sends none). */
  token?: string;
}

export interface GrpcClientSetup {
  credentials: grpc.ChannelCredentials;
  /** Channel options (the TLS target name when overridden) and interceptors, for the client constructor. */
  options: grpc.ClientOptions;
}

export function grpcClientSetup(address: string, opts: ClientAuthOptions = {}, extra: grpc.ClientOptions = {}): GrpcClientSetup {
  const { credentials, options } = clientCredentials(address, opts.security ?? clientSecurityFromEnv());
  const token = opts.token ?? process.env.TEMPER_AUTH_TOKEN ?? '';
  const interceptors = [traceInterceptor, ...(token ? [bearerTokenInterceptor(token)] : []), ...(extra.interceptors ?? [])];
  return { credentials, options: { ...options, ...extra, interceptors } };
}
