// temper k8s status: the release's services, their Deployments and pods: node, GPUs,
// readiness, restarts. Summarising is kept apart from fetching so it can be read (and tested)
// on plain API objects.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { Cluster, releaseSelector } from './cluster';
import { K8sCommandError } from './errors';

export const temperServices = ['learner', 'generator', 'scorer', 'checkpoint-store'] as const;

export interface PodRow {
  service: string;
  pod: string;
  node: string;
  /** GPUs the pod's containers are limited to (nvidia.com/gpu, MIG slices, ...), summed. */
  gpus: number;
  ready: string;
  phase: string;
  restarts: number;
  /** Why a container is not running, when one is waiting or terminated (CrashLoopBackOff, ...). */
  reason: string;
  ageS: number | null;
}

export interface ServiceRow {
  service: string;
  deployment: string;
  desired: number | null;
  ready: number;
  pods: PodRow[];
}

export interface StatusReport {
  context: string;
  namespace: string;
  release: string;
  services: ServiceRow[];
}

function isGpuResource(name: string): boolean {
  return /(^|[./-])gpu($|[./-])|^nvidia\.com\/mig-|^amd\.com\/gpu$/.test(name);
}

export function podRow(pod: V1Pod, now: Date): PodRow {
  const containers = pod.spec?.containers ?? [];
  let gpus = 0;
  for (const c of containers) {
    for (const [k, v] of Object.entries(c.resources?.limits ?? {})) if (isGpuResource(k)) gpus += Number(v) || 0;
  }
  const statuses = pod.status?.containerStatuses ?? [];
  const readyCount = statuses.filter((s) => s.ready).length;
  const restarts = statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0);
  const waiting = statuses.map((s) => s.state?.waiting?.reason ?? s.state?.terminated?.reason).find(Boolean);
  const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')?.reason;
  const started = pod.status?.startTime ?? pod.metadata?.creationTimestamp;
  return {
    service: pod.metadata?.labels?.['app.kubernetes.io/component'] ?? '?',
    pod: pod.metadata?.name ?? '?',
    node: pod.spec?.nodeName ?? '',
    gpus,
    ready: `${readyCount}/${containers.length}`,
    phase: pod.metadata?.deletionTimestamp ? 'Terminating' : (pod.status?.phase ?? 'Unknown'),
    restarts,
    reason: waiting ?? unschedulable ?? '',
    ageS: started ? Math.max(0, Math.round((now.getTime() - new Date(started).getTime()) / 1000)) : null,
  };
}

export function summarise(deployments: V1Deployment[], pods: V1Pod[], now: Date): ServiceRow[] {
  const rows = pods.map((p) => podRow(p, now));
  const names = new Set<string>(temperServices);
  for (const d of deployments) names.add(d.metadata?.labels?.['app.kubernetes.io/component'] ?? '?');
  for (const r of rows) names.add(r.service);
  return [...names]
    .map((service) => {
      const d = deployments.find((x) => x.metadata?.labels?.['app.kubernetes.io/component'] === service);
      return {
        service,
        deployment: d?.metadata?.name ?? '',
        desired: d ? (d.spec?.replicas ?? 1) : null,
        ready: d?.status?.readyReplicas ?? 0,
        pods: rows.filter((r) => r.service === service).sort((a, b) => a.pod.localeCompare(b.pod)),
      };
    })
    .filter((s) => s.deployment || s.pods.length);
}

export async function fetchStatus(cluster: Cluster, now = new Date()): Promise<StatusReport> {
  const selector = releaseSelector(cluster.release);
  const [deployments, pods] = await Promise.all([
    cluster.call('list deployments', () => cluster.apps.listNamespacedDeployment({ namespace: cluster.namespace, labelSelector: selector })),
    cluster.call('list pods', () => cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: selector })),
  ]);
  const services = summarise(deployments.items, pods.items, now);
  if (!services.length) {
    throw new K8sCommandError(
      `no Temper release "${cluster.release}" in namespace "${cluster.namespace}" (context "${cluster.context}"): no Deployments or pods carry its labels. ` +
        `Check the release and namespace (helm list -A; --release, --namespace).`,
      'not-found',
    );
  }
  return { context: cluster.context, namespace: cluster.namespace, release: cluster.release, services };
}

function age(s: number | null): string {
  if (s === null) return '-';
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** The report as a table, one line per pod; a service without pods says why (scaled to zero). */
export function formatStatus(r: StatusReport): string {
  const header = ['SERVICE', 'POD', 'NODE', 'GPU', 'READY', 'STATUS', 'RESTARTS', 'AGE'];
  const lines: string[][] = [];
  for (const s of r.services) {
    if (!s.pods.length) {
      const why = s.desired === 0 ? 'scaled to zero' : s.desired === null ? 'no Deployment' : `0 of ${s.desired} pods`;
      lines.push([s.service, `(no pods: ${why})`, '', '', '', '', '', '']);
      continue;
    }
    for (const p of s.pods) {
      lines.push([s.service, p.pod, p.node || '<none>', String(p.gpus), p.ready, p.reason ? `${p.phase} (${p.reason})` : p.phase, String(p.restarts), age(p.ageS)]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const ready = r.services.reduce((n, s) => n + s.pods.filter((p) => p.ready.split('/')[0] === p.ready.split('/')[1] && p.ready !== '0/0').length, 0);
  const total = r.services.reduce((n, s) => n + s.pods.length, 0);
  return [`release ${r.release}  namespace ${r.namespace}  context ${r.context}  (${ready}/${total} pods ready)`, fmt(header), ...lines.map(fmt)].join('\n') + '\n';
}
