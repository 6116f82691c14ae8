// A Temper service's gRPC server: its own services plus grpc.health.v1 and server
// reflection (v1 and v1alpha), bound on one address with TLS (or plaintext on loopback when
// asked for) and every call of its own services checked against the auth policy.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { descriptorSetPath } from '@temper/proto';
import * as fs from 'node:fs';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { counter } from '@temper/telemetry';
import { Access, AuthPolicy, authInterceptor, authPolicyFromEnv } from './auth';
import { ServerSecurity, serverCredentials, serverSecurityFromEnv } from './transport-security';

export interface ServiceBinding {
  /** Fully qualified name, e.g. temper.v1.RewardScorer (what health and reflection report). */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /**
   * Each method's access level, by its key in `definition`: 'control' for calls that change
   * something, 'read' for the rest. Every method must have one (the server refuses to start
   * otherwise), so a new RPC cannot slip in unguarded.
   */
  access: Record<string, Access>;
}

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  services: ServiceBinding[];
  /** Largest message either way, bytes (checkpoint chunks and rollout batches are big). */
  maxMessageBytes?: number;
  /** TLS or plaintext on loopback (default: from the environment, see transport-security.ts). */
  security?: ServerSecurity;
  /** Who may call what (default: from the environment, see auth.ts). */
  auth?: AuthPolicy;
  /** Told of each refused call (method path and why), e.g. to log it. */
  onRefused?: (method: string, details: string) => void;
}

export interface RunningGrpcServer {
  server: grpc.Server;
  health: HealthImplementation;
  /** The address actually bound (with the chosen port). */
  address: string;
  port: number;
  /** Reports NOT_SERVING, lets in-flight calls finish for up to graceMs, then forces. */
  stop(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  const maxBytes = opts.maxMessageBytes ?? 64 * 1024 * 1024;
  // Settings are checked before anything binds: a bad certificate path or policy stops the start.
  const credentials = serverCredentials(opts.security ?? serverSecurityFromEnv(), opts.address);
  const auth = opts.auth ?? authPolicyFromEnv();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    interceptors: [countCalls, boundDetails, refuseMalformed, authInterceptor(auth, accessByPath(opts.services), (m, d) => opts.onRefused?.(m, d.details ?? ''))],
  });
  for (const s of opts.services) server.addService(markMalformed(s.definition), s.implementation);

  // '' is the whole server's status, as grpc.health.v1 defines it.
  const statuses = Object.fromEntries([['', 'SERVING'], ...opts.services.map((s) => [s.name, 'SERVING'])]);
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = opts.address.slice(0, opts.address.lastIndexOf(':'));
  return {
    server,
    health,
    port,
    address: `${host}:${port}`,
    stop: async (graceMs = 5000) => {
      health.setStatus('', 'NOT_SERVING');
      for (const s of opts.services) health.setStatus(s.name, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

/** onRefused for a service: a warning with the method and why, so probing shows in the logs. */
export function logRefusal(log: { warn(msg: string, fields?: Record<string, unknown>): void }): (method: string, details: string) => void {
  return (method, details) => log.warn('refused a call', { method, details });
}

function accessByPath(services: ServiceBinding[]): Map<string, Access> {
  const byPath = new Map<string, Access>();
  for (const s of services) {
    for (const [key, method] of Object.entries(s.definition)) {
      const access = s.access[key];
      if (access !== 'control' && access !== 'read') throw new Error(`${s.name}: method ${key} has no access level (control or read)`);
      byPath.set(method.path, access);
    }
  }
  return byPath;
}

/** Status details longer than this many characters are cut (they travel in HTTP/2 trailers; 4 bytes a character at most stays under 16 KiB). */
export const MAX_STATUS_DETAILS = 4000;

// A status whose details outgrow the peer's header list limit (16 KiB by default) never
// arrives: the caller waits out its deadline and the connection's other calls with it. A
// spec with thousands of mistakes lists them all; the first ones are what a reader needs.
const boundDetails: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    sendStatus: (status, next) => {
      const details = status.details ?? '';
      if (details.length <= MAX_STATUS_DETAILS) return next(status);
      next({ ...status, details: `${details.slice(0, MAX_STATUS_DETAILS)}… (${details.length - MAX_STATUS_DETAILS} more characters)` });
    },
  });

// A request that does not decode as its message would otherwise end as INTERNAL ("Error
// deserializing request", from inside grpc-js). Decoding failures become a marker instead,
// which refuseMalformed turns into INVALID_ARGUMENT saying what was wrong and where.
class MalformedRequest {
  constructor(
    readonly method: string,
    readonly problem: string,
  ) {}
}

function markMalformed(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [key, method] of Object.entries(definition)) {
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (err) {
          return new MalformedRequest(method.path, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

const refuseMalformed: grpc.ServerInterceptor = (_method, call) =>
  new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMessage: (message, msgNext) => {
          if (!(message instanceof MalformedRequest)) return msgNext(message);
          call.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: `${message.method}: the request is not a valid protobuf message of its type: ${message.problem}`, metadata: new grpc.Metadata() });
        },
      }),
  });

const handled = counter('temper_grpc_server_handled_total', 'gRPC calls finished, by method and status code.');

// Counts every finished call by method and status (health checks and reflection included).
const countCalls: grpc.ServerInterceptor = (method, call) =>
  new grpc.ServerInterceptingCall(call, {
    sendStatus: (status, next) => {
      handled.inc({ method: method.path, code: grpc.status[status.code] ?? String(status.code) });
      next(status);
    },
  });

let cachedReflection: protoLoader.PackageDefinition | undefined;

// Reflection describes Temper's contracts (from the buf-built descriptor set) and the
// health service, so grpcurl and friends can list and call everything without .proto files.
function reflectionPackage(): protoLoader.PackageDefinition {
  if (!cachedReflection) {
    const opts = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
    const temper = protoLoader.loadFileDescriptorSetFromBuffer(fs.readFileSync(descriptorSetPath), opts);
    const health = protoLoader.loadSync(healthProtoPath, opts);
    cachedReflection = { ...temper, ...health };
  }
  return cachedReflection;
}
