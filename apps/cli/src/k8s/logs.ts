// temper k8s logs <service>: the logs of a service's pods (all replicas, each line prefixed
// with its pod when there are several), the last --tail lines, or followed with --follow.
import { PassThrough } from 'node:stream';
import { Cluster, releaseSelector } from './cluster';
import { K8sCommandError } from './errors';
import { temperServices } from './status';

export interface LogsOptions {
  service: string;
  tail?: number;
  follow?: boolean;
  previous?: boolean;
  out: NodeJS.WritableStream;
  signal?: AbortSignal;
}

export async function serviceLogs(cluster: Cluster, opts: LogsOptions): Promise<void> {
  if (!(temperServices as readonly string[]).includes(opts.service)) {
    throw new K8sCommandError(`unknown service "${opts.service}": one of ${temperServices.join(', ')}`, 'not-found');
  }
  const pods = await cluster.call(`list the ${opts.service} pods`, () =>
    cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: releaseSelector(cluster.release, opts.service) }),
  );
  const names = pods.items.map((p) => p.metadata?.name ?? '').filter(Boolean).sort();
  if (!names.length) {
    throw new K8sCommandError(
      `no ${opts.service} pods for release "${cluster.release}" in namespace "${cluster.namespace}" (context "${cluster.context}")` +
        (opts.service === 'generator' || opts.service === 'scorer' ? ': it may be scaled to zero while no work waits' : ''),
      'not-found',
    );
  }
  const prefix = (pod: string) => (names.length > 1 ? `[${pod}] ` : '');
  const writeLines = (pod: string, text: string) => {
    for (const line of text.split('\n')) if (line) opts.out.write(`${prefix(pod)}${line}\n`);
  };

  if (!opts.follow) {
    for (const pod of names) {
      const text = await cluster.call(`read the logs of pod ${pod}`, () =>
        cluster.core.readNamespacedPodLog({ name: pod, namespace: cluster.namespace, container: opts.service, tailLines: opts.tail, previous: opts.previous || undefined }),
      );
      writeLines(pod, text);
    }
    return;
  }

  // Follow every pod at once until each stream ends or the signal fires.
  const log = new cluster.k8s.Log(cluster.kc);
  await Promise.all(
    names.map(
      (pod) =>
        new Promise<void>((resolve, reject) => {
          const sink = new PassThrough();
          let pending = '';
          sink.on('data', (chunk: Buffer) => {
            pending += chunk.toString('utf8');
            const cut = pending.lastIndexOf('\n');
            if (cut >= 0) {
              writeLines(pod, pending.slice(0, cut));
              pending = pending.slice(cut + 1);
            }
          });
          // The log stream ends when the container stops or the request is aborted.
          sink.on('end', () => {
            if (pending) writeLines(pod, pending);
            pending = '';
            resolve();
          });
          cluster
            .call(`follow the logs of pod ${pod}`, () =>
              log.log(cluster.namespace, pod, opts.service, sink, { follow: true, tailLines: opts.tail, previous: opts.previous || undefined }),
            )
            .then((ac) => {
              if (opts.signal?.aborted) ac.abort();
              opts.signal?.addEventListener('abort', () => (ac.abort(), sink.end()), { once: true });
            }, reject);
        }),
    ),
  );
}
