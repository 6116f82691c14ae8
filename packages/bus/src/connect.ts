// One NATS connection per service, with JetStream handles and the streams in place.
import { jetstream, JetStreamClient, jetstreamManager, JetStreamManager } from '@nats-io/jetstream';
import { ConnectionOptions, connect, credsAuthenticator, NatsConnection } from '@nats-io/transport-node';
import * as fs from 'node:fs';
import { BusService, busAccess, streamsOf } from './permissions';
import { ensureStreams } from './streams';

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

export interface ConnectBusOptions {
  /**
   * The service connecting: its replies come on its own inbox prefix and it creates only the
   * streams it uses, as its NATS user's permissions (permissions.ts) require. Without it
   * (tools, tests) the default inbox is used and every stream is created.
   */
  service?: BusService;
}

export async function connectBus(url: string, name: string, opts: ConnectBusOptions = {}): Promise<Bus> {
  let nc: NatsConnection;
  const security = { ...natsAuth(), ...natsTls() };
  try {
    // noAsyncTraces: no stack captured for every request (a JetStream publish is one), which
    // costs more than the publish itself; errors still say what failed.
    nc = await connect({
      servers: url,
      name,
      maxReconnectAttempts: -1,
      noAsyncTraces: true,
      ...(opts.service ? { inboxPrefix: busAccess[opts.service].inboxPrefix } : {}),
      ...security,
    });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url} (set NATS_URL): ${err instanceof Error ? err.message : String(err)}`);
  }
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, opts.service ? streamsOf(opts.service) : undefined);
  return {
    nc,
    js: jetstream(nc),
    jsm,
    close: async () => {
      await nc.drain();
    },
  };
}

/**
 * Credentials from the environment, as the Helm chart sets them from a Secret:
 * NATS_CREDS (a .creds file), NATS_TOKEN, or NATS_USER with NATS_PASSWORD.
 */
export function natsAuth(env: NodeJS.ProcessEnv = process.env): Partial<ConnectionOptions> {
  if (env.NATS_CREDS) {
    let creds: Uint8Array;
    try {
      creds = fs.readFileSync(env.NATS_CREDS);
    } catch (err) {
      throw new Error(`cannot read NATS_CREDS ${env.NATS_CREDS}: ${(err as Error).message}`);
    }
    return { authenticator: credsAuthenticator(creds) };
  }
  if (env.NATS_TOKEN) return { token: env.NATS_TOKEN };
  if (env.NATS_USER) return { user: env.NATS_USER, pass: env.NATS_PASSWORD ?? '' };
  return {};
}

/**
 * TLS to NATS from the environment, as the Helm chart mounts it from cert-manager Secrets:
 * NATS_TLS_CA (the CA bundle that verifies the server; setting it turns TLS on), and
 * NATS_TLS_CERT with NATS_TLS_KEY (a client certificate, for a server that verifies
 * clients). A tls:// URL turns TLS on with the system's roots.
 */
export function natsTls(env: NodeJS.ProcessEnv = process.env): Partial<ConnectionOptions> {
  const ca = env.NATS_TLS_CA || undefined;
  const cert = env.NATS_TLS_CERT || undefined;
  const key = env.NATS_TLS_KEY || undefined;
  if (Boolean(cert) !== Boolean(key)) throw new Error('NATS_TLS_CERT and NATS_TLS_KEY go together: set both for a client certificate, or neither');
  if (!ca && !cert) return {};
  const read = (file: string, variable: string) => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${variable} ${file}: ${(err as Error).message}`);
    }
  };
  return {
    tls: {
      ...(ca ? { ca: read(ca, 'NATS_TLS_CA') } : {}),
      ...(cert && key ? { cert: read(cert, 'NATS_TLS_CERT'), key: read(key, 'NATS_TLS_KEY') } : {}),
    },
  };
}
