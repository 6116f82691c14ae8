// The user's cluster, as kubectl sees it: the kubeconfig (KUBECONFIG or ~/.kube/config, or the
// in-cluster service account), a context and a namespace. @kubernetes/client-node is an ES
// module, so it is loaded with import() when a k8s command runs, not when the CLI starts.
import type * as K8s from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { describeK8sError } from './errors';

export type ClientNode = typeof K8s;

export interface ClusterOptions {
  /** kubeconfig context; default: the current one. */
  context?: string;
  /** default: the context's namespace, else "default". */
  namespace?: string;
  /** Helm release name; default "temper". */
  release?: string;
}

export interface Cluster {
  k8s: ClientNode;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  apps: K8s.AppsV1Api;
  context: string;
  server: string;
  namespace: string;
  release: string;
  /** Runs an API call; failures become errors that say what was asked and what to do. */
  call<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

export const defaultRelease = 'temper';

/** Label selector of a release's Temper pods (the chart's labels), optionally of one service. */
export function releaseSelector(release: string, service?: string): string {
  const parts = ['app.kubernetes.io/name=temper', `app.kubernetes.io/instance=${release}`];
  if (service) parts.push(`app.kubernetes.io/component=${service}`);
  return parts.join(',');
}

export async function connectCluster(opts: ClusterOptions): Promise<Cluster> {
  const k8s = (await import('@kubernetes/client-node')) as ClientNode;
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new Error(`cannot read the kubeconfig (${process.env.KUBECONFIG || '~/.kube/config'}): ${err instanceof Error ? err.message : String(err)}`);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(`no context "${opts.context}" in the kubeconfig${known.length ? ` (contexts: ${known.join(', ')})` : ''}`);
    }
    kc.setCurrentContext(opts.context);
  }
  const context = kc.getCurrentContext();
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new Error(
      `no Kubernetes cluster configured${context ? ` for context "${context}"` : ''}: set KUBECONFIG or create ~/.kube/config (kubectl config view shows what is there)`,
    );
  }
  const namespace = opts.namespace || kc.getContextObject(context)?.namespace || 'default';
  const release = opts.release || defaultRelease;
  const where = { server: cluster.server, context, namespace };
  return {
    k8s,
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    context,
    server: cluster.server,
    namespace,
    release,
    call: async (what, fn) => {
      try {
        return await fn();
      } catch (err) {
        throw describeK8sError(err, what, where);
      }
    },
  };
}
