// Asks a server's grpc.health.v1 Health/Check: how `temper up` and the tests know a
// service is ready.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { ClientSecurity, clientCredentials } from './transport-security';

type HealthClient = grpc.Client & {
  check(
    req: { service: string },
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
  ): void;
};

let HealthCtor: (new (address: string, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions) => HealthClient) | undefined;

function healthClient(address: string, security?: ClientSecurity): HealthClient {
  if (!HealthCtor) {
    const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: typeof HealthCtor } } } };
    HealthCtor = pkg.grpc.health.v1.Health;
  }
  // Health is open to every caller, but still goes over TLS unless plaintext is asked for.
  const { credentials, options } = clientCredentials(address, security);
  return new HealthCtor!(address, credentials, options);
}

/** The serving status of `service` ('' for the whole server): 'SERVING', 'NOT_SERVING', ... */
export async function checkHealth(address: string, service = '', timeoutMs = 2000, security?: ClientSecurity): Promise<string> {
  const client = healthClient(address, security);
  try {
    return await new Promise<string>((resolve, reject) =>
      client.check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res!.status),
      ),
    );
  } finally {
    client.close();
  }
}

/** Polls until `service` reports SERVING or the time is up. */
export async function waitForServing(address: string, service = '', timeoutMs = 15000, security?: ClientSecurity): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if ((await checkHealth(address, service, 1000, security)) === 'SERVING') return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${address} did not report SERVING for "${service}" within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
