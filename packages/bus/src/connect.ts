// One NATS connection per service, with JetStream handles and the streams in place.
import { jetstream, JetStreamClient, jetstreamManager, JetStreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
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
    nc = await connect({ servers: url, name, maxReconnectAttempts: -1 });
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
