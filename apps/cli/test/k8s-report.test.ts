// The pieces of `temper k8s` that need no API server: summarising pods and Deployments,
// turning API failures into messages, parsing arguments; and a check that the stored API
// responses the command tests replay are valid Kubernetes objects.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { parseArgs } from '../src/commands/k8s';
import { describeK8sError } from '../src/k8s/errors';
import { formatStatus, podRow, summarise } from '../src/k8s/status';
import { validate } from '../../../test/helm/render';
import { loadFixture } from './k8s-replay';

const fixture = loadFixture('status-rl');
const body = (path: string) => fixture.interactions.find((i) => i.request.path.includes(path))!.response.body as { items: unknown[] };
const pods = body('/pods?').items as V1Pod[];
const deployments = body('/deployments?').items as V1Deployment[];
const now = new Date('2026-11-25T10:00:00Z');

describe('status report', () => {
  it('summarises per service, learner first, with replicas from the Deployments', () => {
    const rows = summarise(deployments, pods, now);
    expect(rows.map((r) => [r.service, r.desired, r.ready, r.pods.length])).toEqual([
      ['learner', 1, 1, 1],
      ['generator', 2, 1, 2],
      ['scorer', 0, 0, 0],
      ['checkpoint-store', 1, 0, 1],
    ]);
  });

  it('pod rows: GPUs from limits (MIG slices too), age, and a terminating pod', () => {
    const learner = podRow(pods.find((p) => p.metadata!.name!.includes('learner'))!, now);
    expect(learner).toEqual(expect.objectContaining({ gpus: 1, node: 'gpu-a100-0', ready: '1/1', phase: 'Running', restarts: 0, reason: '', ageS: 110 * 60 }));
    const mig = structuredClone(pods[0]);
    mig.spec!.containers[0].resources = { limits: { 'nvidia.com/mig-3g.40gb': '2', memory: '8Gi' } };
    mig.metadata!.deletionTimestamp = new Date('2026-11-25T09:59:00Z');
    expect(podRow(mig, now)).toEqual(expect.objectContaining({ gpus: 2, phase: 'Terminating' }));
  });

  it('the table says why a service has no pods', () => {
    const noPods = summarise(
      deployments.map((d) => structuredClone(d)),
      pods.filter((p) => !p.metadata!.name!.includes('generator')),
      now,
    );
    const text = formatStatus({ context: 'c', namespace: 'ml', release: 'rl', services: noPods });
    expect(text).toMatch(/^generator\s+\(no pods: 0 of 2 pods\)$/m);
    expect(text).toMatch(/^scorer\s+\(no pods: scaled to zero\)$/m);
    expect(text).toMatch(/^learner .* 110m$/m);
    expect(text.split('\n')[0]).toBe('release rl  namespace ml  context c  (1/2 pods ready)');
  });
});

describe('API failures as messages', () => {
  const where = { server: 'https://k8s.example:6443', context: 'prod', namespace: 'ml' };

  it('network failures name the server and the context', () => {
    const dns = describeK8sError(Object.assign(new Error('request to https://k8s.example:6443/api/v1/namespaces/ml/pods failed, reason: getaddrinfo ENOTFOUND k8s.example'), { code: 'ENOTFOUND' }), 'list pods', where);
    expect(dns.kind).toBe('unreachable');
    expect(dns.message).toBe('cannot list pods: cannot reach the Kubernetes API server at https://k8s.example:6443 (context "prod", namespace "ml"): ENOTFOUND; is the cluster running, and is this the right context? (--context, kubectl config get-contexts)');
    const tls = describeK8sError(Object.assign(new Error('request failed, reason: self-signed certificate'), { cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' } }), 'list pods', where);
    expect(tls.message).toContain('DEPTH_ZERO_SELF_SIGNED_CERT; the server certificate is not trusted (check certificate-authority in the kubeconfig)');
  });

  it('API statuses keep what the API server said', () => {
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcdserver: request timed out', reason: 'InternalError', code: 500 });
    const e = describeK8sError({ code: 500, body }, 'list deployments', where);
    expect(e.kind).toBe('api');
    expect(e.message).toBe('cannot list deployments (context "prod", namespace "ml"): the API server answered 500 InternalError: etcdserver: request timed out');
    const nf = describeK8sError({ code: 404, body: { message: 'pods "x" not found', reason: 'NotFound', code: 404 } }, 'read the logs of pod x', where);
    expect(nf.kind).toBe('not-found');
    expect(nf.message).toBe('cannot read the logs of pod x (context "prod", namespace "ml"): not found: pods "x" not found.');
  });
});

describe('arguments', () => {
  it('takes flags with values inline or after, and refuses unknown ones', () => {
    const p = parseArgs(['logs', 'learner', '--tail=5', '-n', 'ml', '--follow', '--context', 'gke-prod']);
    expect(p.positional).toEqual(['logs', 'learner']);
    expect(Object.fromEntries(p.flags)).toEqual({ tail: '5', n: 'ml', follow: true, context: 'gke-prod' });
    expect(() => parseArgs(['status', '--release'])).toThrow('--release needs a value');
    expect(() => parseArgs(['status', '--all'])).toThrow('unknown option --all');
  });
});

describe('stored API responses', () => {
  it('are valid Kubernetes objects (schema and strict fields), as a real API server returns them', async () => {
    const objects: unknown[] = [];
    for (const name of ['status-rl', 'logs', 'submit', 'status-not-installed']) {
      for (const i of loadFixture(name).interactions) {
        const b = i.response.body as { kind?: string; items?: Record<string, unknown>[]; apiVersion?: string };
        if (typeof b !== 'object' || !b.items) continue;
        // List items carry no apiVersion/kind of their own; the list's says what they are.
        const kind = b.kind!.replace(/List$/, '');
        for (const item of b.items) objects.push({ apiVersion: b.apiVersion, kind, ...item });
      }
    }
    expect(objects.length).toBeGreaterThanOrEqual(8);
    const results = await validate(objects);
    expect(results.filter((r) => r.errors.length)).toEqual([]);
  });
});
