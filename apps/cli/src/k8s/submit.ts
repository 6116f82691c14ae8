// temper k8s submit <spec>: creates a run on the release's learner (PolicyLearner.CreateRun
// with the spec as YAML). From outside the cluster the CLI port-forwards to a ready learner
// pod through the API server, as `kubectl port-forward` does; inside the cluster (or with
// --endpoint) it calls the learner's Service directly.
import * as grpc from '@grpc/grpc-js';
import { PolicyLearnerClient, RunStatus, runStateToJSON } from '@temper/proto';
import { ClientAuthOptions, clientSecurityFromEnv, grpcClientSetup } from '@temper/service';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { Cluster, releaseSelector } from './cluster';
import { K8sCommandError } from './errors';

export interface SubmitOptions {
  specPath: string;
  runId?: string;
  /** host:port of the learner; skips the cluster lookup. */
  endpoint?: string;
  /**
   * How to reach the learner: port-forward through the API server, its Service's cluster DNS
   * name (inside the cluster, or where cluster DNS resolves), or auto (service when running
   * in a pod, else port-forward).
   */
  via?: 'auto' | 'port-forward' | 'service';
  timeoutMs?: number;
  /** TLS and bearer token (default: from the environment, as the flags set it). */
  auth?: ClientAuthOptions;
}

export interface SubmitResult {
  run: RunStatus;
  /** How the learner was reached: "port-forward to pod <name>", "service <dns>" or "endpoint <addr>". */
  via: string;
}

interface Target {
  address: string;
  via: string;
  /** The name the learner's certificate carries when the address does not (a port-forward). */
  tlsServerName?: string;
  close(): Promise<void>;
}

export function readSpec(specPath: string): string {
  let text: string;
  try {
    text = fs.readFileSync(specPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `no run spec at ${specPath}` : `cannot read the run spec ${specPath}: ${(err as Error).message}`);
  }
  if (!text.trim()) throw new Error(`the run spec ${specPath} is empty`);
  return text;
}

function inCluster(cluster: Cluster): boolean {
  return Boolean(process.env.KUBERNETES_SERVICE_HOST) && cluster.kc.getCurrentCluster()?.name === 'inCluster';
}

/** The learner's Service (by the chart's labels) and its gRPC port. */
async function learnerService(cluster: Cluster): Promise<{ host: string; port: number }> {
  const list = await cluster.call('list the learner service', () =>
    cluster.core.listNamespacedService({ namespace: cluster.namespace, labelSelector: releaseSelector(cluster.release, 'learner') }),
  );
  const svc = list.items[0];
  const port = svc?.spec?.ports?.find((p) => p.name === 'grpc')?.port;
  if (!svc?.metadata?.name || !port) {
    throw new K8sCommandError(`no learner Service for release "${cluster.release}" in namespace "${cluster.namespace}" (context "${cluster.context}")`, 'not-found');
  }
  return { host: `${svc.metadata.name}.${cluster.namespace}.svc`, port };
}

/** A ready learner pod and the container port of its gRPC server. */
async function learnerPod(cluster: Cluster): Promise<{ name: string; port: number }> {
  const pods = await cluster.call('list the learner pods', () =>
    cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: releaseSelector(cluster.release, 'learner') }),
  );
  if (!pods.items.length) {
    throw new K8sCommandError(
      `no learner pod for release "${cluster.release}" in namespace "${cluster.namespace}" (context "${cluster.context}"): is the release installed? (temper k8s status)`,
      'not-found',
    );
  }
  const ready = pods.items.find(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  if (!ready?.metadata?.name) {
    const states = pods.items.map((p) => `${p.metadata?.name} ${p.status?.phase ?? 'Unknown'}`).join(', ');
    throw new K8sCommandError(`the learner is not ready yet (${states}); wait for it (temper k8s status) and submit again`, 'not-found');
  }
  const port = ready.spec?.containers?.flatMap((c) => c.ports ?? []).find((p) => p.name === 'grpc')?.containerPort;
  if (!port) throw new K8sCommandError(`the learner pod ${ready.metadata.name} declares no "grpc" container port`, 'api');
  return { name: ready.metadata.name, port };
}

/**
 * A loopback listener whose connections are tunnelled to podPort of the pod through the API
 * server's port-forward (one WebSocket stream per connection).
 */
async function portForward(cluster: Cluster, pod: string, podPort: number): Promise<Target> {
  const forwarder = new cluster.k8s.PortForward(cluster.kc);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const errors = new PassThrough();
    errors.on('data', (d: Buffer) => socket.destroy(new Error(`port-forward to ${pod}:${podPort}: ${d.toString('utf8').trim()}`)));
    forwarder.portForward(cluster.namespace, pod, [podPort], socket, errors, socket).then(
      (ws) => {
        const w = typeof ws === 'function' ? ws() : ws;
        socket.on('close', () => w?.close());
        w?.on('close', () => socket.end());
      },
      (err: unknown) => socket.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    via: `port-forward to pod ${pod}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function target(cluster: Cluster | null, opts: SubmitOptions): Promise<Target> {
  const none = async () => {};
  if (opts.endpoint) return { address: opts.endpoint, via: `endpoint ${opts.endpoint}`, close: none };
  if (!cluster) throw new Error('no cluster and no --endpoint');
  const via = opts.via ?? 'auto';
  if (via === 'service' || (via === 'auto' && inCluster(cluster))) {
    const { host, port } = await learnerService(cluster);
    return { address: `${host}:${port}`, via: `service ${host}:${port}`, close: none };
  }
  const pod = await learnerPod(cluster);
  // The certificate names the learner's Service, not the loopback end of the tunnel.
  const { host } = await learnerService(cluster);
  return { ...(await portForward(cluster, pod.name, pod.port)), tlsServerName: host };
}

function createRun(t: Target, spec: string, runId: string | undefined, timeoutMs: number, auth: ClientAuthOptions = {}): Promise<RunStatus> {
  let security = auth.security ?? clientSecurityFromEnv();
  if (security.kind === 'tls' && !security.serverName && t.tlsServerName) security = { ...security, serverName: t.tlsServerName };
  const { credentials, options } = grpcClientSetup(t.address, { ...auth, security });
  const client = new PolicyLearnerClient(t.address, credentials, options);
  return new Promise<RunStatus>((resolve, reject) => {
    client.createRun({ spec: { $case: 'specYaml', value: spec }, runId: runId ?? '' }, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else if (!res?.run) reject(new Error('the learner answered CreateRun without a run'));
      else resolve(res.run);
    });
  });
}

function describeGrpcError(err: grpc.ServiceError, via: string): Error {
  const details = err.details || err.message;
  switch (err.code) {
    case grpc.status.INVALID_ARGUMENT:
      return new Error(`the learner refused the run spec:\n  ${details.split('\n').join('\n  ')}`);
    case grpc.status.UNIMPLEMENTED:
      return new Error(`the learner (${via}) does not implement PolicyLearner.CreateRun: is its image older than this CLI? (${details})`);
    case grpc.status.UNAUTHENTICATED:
    case grpc.status.PERMISSION_DENIED:
      return new Error(`the learner (${via}) refused the credentials: ${details} (give a control token with --token or TEMPER_AUTH_TOKEN)`);
    case grpc.status.UNAVAILABLE:
      return new Error(`cannot reach the learner (${via}): ${details}`);
    case grpc.status.DEADLINE_EXCEEDED:
      return new Error(`the learner (${via}) did not answer CreateRun in time`);
    default:
      return new Error(`CreateRun failed on the learner (${via}): ${grpc.status[err.code] ?? err.code}: ${details}`);
  }
}

export async function submitRun(cluster: Cluster | null, opts: SubmitOptions): Promise<SubmitResult> {
  const spec = readSpec(opts.specPath);
  const t = await target(cluster, opts);
  try {
    const run = await createRun(t, spec, opts.runId, opts.timeoutMs ?? 30000, opts.auth);
    return { run, via: t.via };
  } catch (err) {
    if (err && typeof (err as grpc.ServiceError).code === 'number' && 'details' in (err as object)) throw describeGrpcError(err as grpc.ServiceError, t.via);
    throw err;
  } finally {
    await t.close();
  }
}

export function formatSubmit(r: SubmitResult): string {
  const state = runStateToJSON(r.run.state).replace(/^RUN_STATE_/, '').toLowerCase();
  return `run ${r.run.runId}${r.run.name ? ` (${r.run.name})` : ''} created: ${state}, via ${r.via}\n`;
}
