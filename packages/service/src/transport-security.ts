// How a Temper process secures its gRPC connections: TLS from certificate files (the paths
// the chart mounts from cert-manager Secrets), mutual TLS when asked for, and plaintext only
// when the process is explicitly told so and the address is a loopback one (the local stack
// and the tests). A server with neither refuses to start, so a forgotten setting never
// leaves a port open in the clear.
//
//   TEMPER_TLS_CERT, TEMPER_TLS_KEY   this process's certificate chain and key (PEM): what a
//                                     server presents, and what a client presents for mTLS
//   TEMPER_TLS_CA                     CA bundle (PEM) to verify the peer: clients verify servers
//                                     with it (default: the system's roots), servers verify
//                                     client certificates with it under mTLS
//   TEMPER_TLS_CLIENT_AUTH=require    servers accept only clients with a certificate the CA signed
//   TEMPER_TLS_SERVER_NAME            the name a client expects in the server's certificate
//                                     (default: the host it dials)
//   TEMPER_PLAINTEXT=loopback         no TLS, allowed on 127.0.0.0/8, ::1 and localhost only;
//                                     TLS files, when given, win over it
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as net from 'node:net';

export interface TlsFiles {
  /** This process's certificate chain (PEM file). */
  cert?: string;
  /** Its private key (PEM file). */
  key?: string;
  /** CA bundle (PEM file) that verifies the peer. */
  ca?: string;
}

export type ServerSecurity =
  | { kind: 'tls'; files: TlsFiles; requireClientCert: boolean }
  | { kind: 'plaintext-loopback' };

export type ClientSecurity =
  | { kind: 'tls'; files: TlsFiles; serverName?: string }
  | { kind: 'plaintext-loopback' };

export class TransportSecurityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransportSecurityError';
  }
}

const tlsFilesFromEnv = (env: NodeJS.ProcessEnv): TlsFiles => ({
  cert: env.TEMPER_TLS_CERT || undefined,
  key: env.TEMPER_TLS_KEY || undefined,
  ca: env.TEMPER_TLS_CA || undefined,
});

function plaintextAsked(env: NodeJS.ProcessEnv): boolean {
  const v = env.TEMPER_PLAINTEXT;
  if (v === undefined || v === '') return false;
  if (v !== 'loopback') throw new TransportSecurityError(`TEMPER_PLAINTEXT must be "loopback" (plaintext is allowed on loopback addresses only), got "${v}"`);
  return true;
}

/** A server's security from the environment (see the top of this file). */
export function serverSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): ServerSecurity {
  const files = tlsFilesFromEnv(env);
  const clientAuth = env.TEMPER_TLS_CLIENT_AUTH || 'none';
  if (clientAuth !== 'none' && clientAuth !== 'require') throw new TransportSecurityError(`TEMPER_TLS_CLIENT_AUTH must be "none" or "require", got "${clientAuth}"`);
  if (files.cert || files.key) return { kind: 'tls', files, requireClientCert: clientAuth === 'require' };
  if (plaintextAsked(env)) return { kind: 'plaintext-loopback' };
  throw new TransportSecurityError(
    'no TLS certificate for the gRPC server: set TEMPER_TLS_CERT and TEMPER_TLS_KEY (PEM files), or TEMPER_PLAINTEXT=loopback for a server on a loopback address',
  );
}

/**
 * A client's security from the environment: TLS when any TLS file is given (as for a server),
 * else plaintext when asked for, else TLS verified against the system's roots.
 */
export function clientSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): ClientSecurity {
  const files = tlsFilesFromEnv(env);
  const tls: ClientSecurity = { kind: 'tls', files, serverName: env.TEMPER_TLS_SERVER_NAME || undefined };
  if (files.ca || files.cert || files.key) return tls;
  return plaintextAsked(env) ? { kind: 'plaintext-loopback' } : tls;
}

/** Whether host:port (or [v6]:port) names this machine's loopback interface. */
export function isLoopbackAddress(address: string): boolean {
  const host = hostOf(address);
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || host.toLowerCase().startsWith('::ffff:127.');
  return false;
}

function hostOf(address: string): string {
  const target = address.replace(/^(dns|ipv4|ipv6):(\/\/\/?)?/, '');
  if (target.startsWith('[')) return target.slice(1, target.indexOf(']'));
  const colon = target.lastIndexOf(':');
  return colon > 0 && target.indexOf(':') === colon ? target.slice(0, colon) : target;
}

function readPem(file: string, what: string, setting: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new TransportSecurityError(`cannot read the ${what} ${file} (${setting}): ${(err as Error).message}`);
  }
}

/** Credentials for a server bound on `address`; refuses plaintext off loopback. */
export function serverCredentials(security: ServerSecurity, address: string): grpc.ServerCredentials {
  if (security.kind === 'plaintext-loopback') {
    if (!isLoopbackAddress(address)) {
      throw new TransportSecurityError(`plaintext gRPC is allowed on loopback addresses only, not on ${address}: give the server a certificate (TEMPER_TLS_CERT, TEMPER_TLS_KEY)`);
    }
    return grpc.ServerCredentials.createInsecure();
  }
  const { cert, key, ca } = security.files;
  if (!cert || !key) throw new TransportSecurityError('a TLS server needs both a certificate (TEMPER_TLS_CERT) and its key (TEMPER_TLS_KEY)');
  if (security.requireClientCert && !ca) throw new TransportSecurityError('mutual TLS (TEMPER_TLS_CLIENT_AUTH=require) needs the CA that signs client certificates (TEMPER_TLS_CA)');
  const pair = { cert_chain: readPem(cert, 'certificate', 'TEMPER_TLS_CERT'), private_key: readPem(key, 'private key', 'TEMPER_TLS_KEY') };
  const root = ca ? readPem(ca, 'CA bundle', 'TEMPER_TLS_CA') : null;
  try {
    return grpc.ServerCredentials.createSsl(root, [pair], security.requireClientCert);
  } catch (err) {
    throw new TransportSecurityError(`TLS settings (${cert}, ${key}${ca ? `, ${ca}` : ''}) are not usable: ${(err as Error).message}`);
  }
}

/** Credentials and channel options for a client of the server at `address`. */
export function clientCredentials(address: string, security: ClientSecurity = clientSecurityFromEnv()): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (security.kind === 'plaintext-loopback') {
    if (!isLoopbackAddress(address)) {
      throw new TransportSecurityError(`plaintext gRPC is allowed to loopback addresses only, not to ${address}: unset TEMPER_PLAINTEXT and give the CA that signed the server's certificate (TEMPER_TLS_CA, --tls-ca)`);
    }
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  const { cert, key, ca } = security.files;
  if (!!cert !== !!key) throw new TransportSecurityError('a client certificate (TEMPER_TLS_CERT) and its key (TEMPER_TLS_KEY) go together: give both or neither');
  const root = ca ? readPem(ca, 'CA bundle', 'TEMPER_TLS_CA') : null;
  const credentials = grpc.credentials.createSsl(
    root,
    key ? readPem(key, 'private key', 'TEMPER_TLS_KEY') : null,
    cert ? readPem(cert, 'certificate', 'TEMPER_TLS_CERT') : null,
  );
  return { credentials, options: security.serverName ? { 'grpc.ssl_target_name_override': security.serverName } : {} };
}
