// A Temper service's gRPC server: its own services plus grpc.health.v1 and server
// reflection (v1 and v1alpha), bound on one address.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { descriptorSetPath } from '@temper/proto';
import * as fs from 'node:fs';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { counter } from '@temper/telemetry';

export interface ServiceBinding {
  /** Fully qualified name, e.g. temper.v1.RewardScorer (what health and reflection report). */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  services: ServiceBinding[];
  /** Largest message either way, bytes (checkpoint chunks and rollout batches are big). */
  maxMessageBytes?: number;
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
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    interceptors: [countCalls],
  });
  for (const s of opts.services) server.addService(s.definition, s.implementation);

  // '' is the whole server's status, as grpc.health.v1 defines it.
  const statuses = Object.fromEntries([['', 'SERVING'], ...opts.services.map((s) => [s.name, 'SERVING'])]);
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  new ReflectionService(reflectionPackage()).addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
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
