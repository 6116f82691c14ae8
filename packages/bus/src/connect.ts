// One NATS connection per service, with JetStream handles and the streams in place.
import { jetstream, JetStreamClient, jetstreamManager, JetStreamManager } from '@nats-io/jetstream';
import { ConnectionOptions, connect, credsAuthenticator, NatsConnection } from '@nats-io/transport-node';
import * as fs from 'node:fs';
import { ensureStreams } from './streams';

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

export async function connectBus(url: string, name: string): Promise<Bus> {
  let nc: NatsConnection;
  try {
    // noAsyncTraces: no stack captured for every request (a JetStream publish is one), which
    // costs more than the publish itself; errors still say what failed.
    nc = await connect({ servers: url, name, maxReconnectAttempts: -1, noAsyncTraces: true, ...natsAuth() });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url} (set NATS_URL): ${err instanceof Error ? err.message : String(err)}`);
  }
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
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
