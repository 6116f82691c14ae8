// temper k8s status|logs|submit: a Temper release on Kubernetes, through the user's
// kubeconfig and context (as kubectl uses them).
import { RunStatus } from '@temper/proto';
import { connectCluster, ClusterOptions } from '../k8s/cluster';
import { serviceLogs } from '../k8s/logs';
import { fetchStatus, formatStatus } from '../k8s/status';
import { formatSubmit, submitRun } from '../k8s/submit';

export const k8sUsage = `temper k8s <status|logs|submit> [--release NAME] [--namespace NS] [--context CTX]

  status [--json]                      the release's services and pods: node, GPUs, readiness, restarts
  logs <service> [--tail N] [--follow] [--previous]
                                       logs of learner, generator, scorer or checkpoint-store
  submit <spec.yaml> [--run-id ID] [--via port-forward|service] [--endpoint HOST:PORT] [--json]
                                       create a run on the learner: through a port-forward from outside
                                       the cluster, its Service inside it (--via overrides)

  --release defaults to "temper", --namespace to the context's namespace, --context to the current one.
  submit sends the token of --token (or TEMPER_AUTH_TOKEN) and verifies the learner's certificate with
  --tls-ca (or TEMPER_TLS_CA): the ca.crt of the learner's TLS Secret (the chart's NOTES show both commands).
`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const valueFlags = new Set(['release', 'namespace', 'n', 'context', 'tail', 'run-id', 'endpoint', 'via']);
const boolFlags = new Set(['json', 'follow', 'f', 'previous', 'help', 'h']);

export function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      positional.push(a);
      continue;
    }
    const [, name, inline] = m;
    if (valueFlags.has(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else if (boolFlags.has(name)) {
      flags.set(name, true);
    } else {
      throw new UsageError(`unknown option ${a}`);
    }
  }
  return { positional, flags };
}

class UsageError extends Error {}

function str(p: Parsed, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = p.flags.get(n);
    if (typeof v === 'string') return v;
  }
  return undefined;
}

export async function k8s(argv: string[]): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`temper k8s: ${(err as Error).message}\n\n${k8sUsage}`);
    return 2;
  }
  const [sub, ...args] = p.positional;
  if (!sub || sub === 'help' || p.flags.has('help') || p.flags.has('h')) {
    (sub ? process.stdout : process.stderr).write(k8sUsage);
    return sub ? 0 : 2;
  }
  const clusterOpts: ClusterOptions = { release: str(p, 'release'), namespace: str(p, 'namespace', 'n'), context: str(p, 'context') };
  const json = p.flags.has('json');
  try {
    switch (sub) {
      case 'status': {
        const cluster = await connectCluster(clusterOpts);
        const report = await fetchStatus(cluster);
        process.stdout.write(json ? JSON.stringify(report) + '\n' : formatStatus(report));
        return 0;
      }
      case 'logs': {
        if (args.length !== 1) throw new UsageError('logs needs one service: learner, generator, scorer or checkpoint-store');
        const tailText = str(p, 'tail');
        const tail = tailText === undefined ? undefined : Number(tailText);
        if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail must be a whole number, not ${tailText}`);
        const cluster = await connectCluster(clusterOpts);
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        try {
          await serviceLogs(cluster, { service: args[0], tail, follow: p.flags.has('follow') || p.flags.has('f'), previous: p.flags.has('previous'), out: process.stdout, signal: ac.signal });
        } finally {
          process.off('SIGINT', stop);
        }
        return 0;
      }
      case 'submit': {
        if (args.length !== 1) throw new UsageError('submit needs one run spec file');
        const endpoint = str(p, 'endpoint');
        const via = str(p, 'via') ?? 'auto';
        if (via !== 'auto' && via !== 'port-forward' && via !== 'service') throw new UsageError(`--via must be port-forward or service, not ${via}`);
        const cluster = endpoint ? null : await connectCluster(clusterOpts);
        const result = await submitRun(cluster, { specPath: args[0], runId: str(p, 'run-id'), endpoint, via });
        process.stdout.write(json ? JSON.stringify({ run: RunStatus.toJSON(result.run), via: result.via }) + '\n' : formatSubmit(result));
        return 0;
      }
      default:
        throw new UsageError(`unknown k8s command "${sub}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`temper k8s: ${err.message}\n\n${k8sUsage}`);
      return 2;
    }
    process.stderr.write(`temper k8s ${sub}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
