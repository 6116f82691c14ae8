// The Helm chart, linted and rendered by a real helm binary for its variants; every rendered
// object is validated against the Kubernetes schema of its apiVersion/kind, and the placement,
// hardening and wiring rules are asserted on what helm actually renders.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { connectBus } from '../../packages/bus/src/connect';
import { startNatsServer } from '../../packages/bus/src/nats-server';
import { busAccess } from '../../packages/bus/src/permissions';
import { streams, subjects } from '../../packages/bus/src/streams';
import { makeTestCa } from '../harness/certificates';
import { defaultPorts } from '../../packages/service/src/ports';
import { helm } from './helm-bin';
import { chartDir, crdApis, K8sObject, offlineChart, render, Rendered, template, validate } from './render';

const services = ['generator', 'scorer', 'learner', 'checkpoint-store'] as const;
const gpuServices = ['generator', 'learner'];
const name = (svc: string) => `rl-temper-${svc}`;

type Container = { name: string; image: string; env: { name: string; value?: string; valueFrom?: unknown }[]; [k: string]: unknown };
const container = (d: K8sObject): Container => d.spec.template.spec.containers[0];
const env = (d: K8sObject, key: string) => container(d).env.find((e) => e.name === key);

let chart: string;
const variants: Record<string, { values: string[]; extra: string[] }> = {
  default: { values: [], extra: [] },
  gpu: { values: ['ci/gpu-values.yaml'], extra: [] },
  keda: { values: ['ci/keda-values.yaml'], extra: crdApis },
  'external-nats': { values: ['ci/external-nats-values.yaml'], extra: crdApis },
  'object-store': { values: ['ci/object-store-values.yaml'], extra: crdApis },
};
const rendered: Record<string, Rendered> = {};

beforeAll(async () => {
  chart = offlineChart();
  for (const [v, o] of Object.entries(variants)) rendered[v] = await render(chart, o);
});

afterAll(() => {
  if (chart) fs.rmSync(chart, { recursive: true, force: true });
});

describe('lint', () => {
  it('lints the chart as committed (at most the not yet fetched NATS dependency is reported)', async () => {
    const r = await helm(['lint', chartDir]);
    expect(r.code).toBe(0);
    const problems = r.stdout.split('\n').filter((l) => /^\[(WARNING|ERROR)\]/.test(l));
    const fetched = fs.existsSync(path.join(chartDir, 'charts'));
    expect(problems.filter((p) => fetched || !/missing these dependencies: nats$/.test(p))).toEqual([]);
  });

  // helm lint cannot be told which APIs a cluster serves (no --api-versions), so the objects
  // of KEDA and the Prometheus Operator are switched off for lint; rendering covers them.
  it.each(Object.keys(variants))('lints strictly with the %s values', async (v) => {
    const crdsOff = variants[v].extra.length ? ['--set', 'keda.enabled=false', '--set', 'metrics.serviceMonitor.enabled=false'] : [];
    const args = ['lint', '--strict', chart, ...variants[v].values.flatMap((f) => ['-f', path.join(chart, f)]), ...crdsOff];
    const r = await helm(args);
    expect(r.stderr + r.stdout).toContain('0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  it('depends on the official NATS chart, switched by nats.enabled', () => {
    const meta = parseYaml(fs.readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { dependencies: { name: string; repository: string; condition: string }[] };
    expect(meta.dependencies).toEqual([expect.objectContaining({ name: 'nats', repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' })]);
  });
});

describe('schemas', () => {
  it('renders only objects that are valid for their apiVersion/kind, in every variant', async () => {
    const all = Object.entries(rendered).flatMap(([v, r]) => r.objects.map((o) => ({ ...o, metadata: { ...o.metadata, name: `${v}:${o.metadata.name}` } })));
    const results = await validate(all);
    expect(results).toHaveLength(all.length);
    expect(results.filter((r) => r.errors.length)).toEqual([]);
    // Every kind the chart renders was checked against a schema, the CRDs included.
    const kinds = new Set(all.map((o) => o.kind));
    for (const k of ['Deployment', 'Service', 'ServiceAccount', 'Role', 'PodDisruptionBudget', 'NetworkPolicy', 'PersistentVolumeClaim', 'ScaledObject', 'ServiceMonitor', 'Certificate', 'Issuer', 'Secret']) expect(kinds).toContain(k);
  });

  it('the validator reports wrong types, unknown fields and unknown kinds (it can fail)', async () => {
    const d = structuredClone(rendered.default.find('Deployment', name('learner')));
    d.spec.replica = 1;
    d.spec.template.spec.containers[0].ports[0].containerPort = 'fifty';
    const so = structuredClone(rendered.keda.find('ScaledObject', name('scorer')));
    so.spec.minReplicaCount = 'zero';
    const [rd, rso, rx] = await validate([d, so, { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }]);
    expect(rd.errors).toEqual(expect.arrayContaining([expect.stringMatching(/spec\.replica: unknown field/), expect.stringMatching(/containerPort must be integer/)]));
    expect(rso.errors).toEqual([expect.stringMatching(/minReplicaCount must be integer/)]);
    expect(rx.errors).toEqual(['no schema known for example.com/v1 Widget']);
  });

  it('values.schema.json turns wrong values away with the offending path', async () => {
    const r = await template(chart, { set: ['services.learner.replicas=2', 'services.generator.gpu.count=0', 'checkpoints.backend=s3', 'image.pullPolicy=Sometimes', 'services.scorer.replica=3'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\/services\/learner\/replicas': maximum: got 2, want 1/);
    expect(r.stderr).toMatch(/\/services\/generator\/gpu\/count': minimum: got 0, want 1/);
    expect(r.stderr).toMatch(/\/checkpoints\/backend': value must be one of 'fs', 'nats'/);
    expect(r.stderr).toMatch(/\/image\/pullPolicy'/);
    expect(r.stderr).toMatch(/\/services\/scorer'.*additional properties 'replica' not allowed/s);
  });

  it('a GPU block on a CPU service is refused', async () => {
    const r = await template(chart, { set: ['services.scorer.gpu.enabled=true'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/additional properties 'gpu' not allowed/);
  });
});

describe('placement', () => {
  it('by default everything runs on CPU nodes with the CPU image', () => {
    for (const svc of services) {
      const d = rendered.default.find('Deployment', name(svc));
      const spec = d.spec.template.spec;
      expect(spec.nodeSelector).toBeUndefined();
      expect(spec.tolerations).toBeUndefined();
      expect(JSON.stringify(container(d).resources)).not.toContain('nvidia.com/gpu');
      expect(container(d).image).toBe('ghcr.io/temper-rl/temper:0.1.0');
    }
  });

  it('with GPUs: learner and generator request GPUs on GPU nodes and tolerate their taint; scorer and store do not', () => {
    for (const svc of services) {
      const d = rendered.gpu.find('Deployment', name(svc));
      const spec = d.spec.template.spec;
      const c = container(d) as Container & { resources: { limits?: Record<string, string> } };
      if (gpuServices.includes(svc)) {
        expect(c.resources.limits?.['nvidia.com/gpu']).toBe(svc === 'learner' ? '2' : '1');
        expect(spec.nodeSelector['nvidia.com/gpu.present']).toBe('true');
        expect(spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
        expect(c.image).toBe('ghcr.io/temper-rl/temper-cuda:0.1.0');
        // The user's own limits stay beside the GPU.
        expect(c.resources.limits?.memory).toBeDefined();
      } else {
        expect(JSON.stringify(c.resources)).not.toContain('nvidia.com/gpu');
        expect(spec.nodeSelector).toBeUndefined();
        expect(spec.tolerations).toBeUndefined();
        expect(c.image).toBe('ghcr.io/temper-rl/temper:0.1.0');
      }
    }
    expect(rendered.gpu.find('Deployment', name('learner')).spec.template.spec.nodeSelector['cloud.google.com/gke-accelerator']).toBe('nvidia-h100-80gb');
  });

  it('GPU settings are per service: another resource name and the user’s own tolerations', async () => {
    const r = await render(chart, {
      set: ['services.generator.gpu.enabled=true', 'services.generator.gpu.resourceName=nvidia.com/mig-3g.40gb', 'services.generator.tolerations[0].key=pool', 'services.generator.tolerations[0].operator=Exists'],
    });
    const g = r.find('Deployment', name('generator'));
    expect(container(g).resources).toEqual(expect.objectContaining({ limits: expect.objectContaining({ 'nvidia.com/mig-3g.40gb': '1' }) }));
    expect(g.spec.template.spec.tolerations.map((t: { key: string }) => t.key)).toEqual(['pool', 'nvidia.com/gpu']);
    expect(r.find('Deployment', name('learner')).spec.template.spec.nodeSelector).toBeUndefined();
  });
});

describe('every service', () => {
  it.each(Object.keys(variants))('has gRPC health probes, a hardened pod and a PDB (%s)', (v) => {
    const r = rendered[v];
    for (const svc of services) {
      const d = r.find('Deployment', name(svc));
      const c = container(d) as Container & Record<string, { grpc: { port: number } }>;
      const port = defaultPorts[svc];
      // Kubernetes' gRPC probes cannot speak TLS: the pod's own probe script asks over TLS.
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) expect((c[probe] as unknown as { exec: { command: string[] } }).exec.command).toEqual(['node', 'packages/service/dist/health-probe.js', String(port)]);
      expect(env(d, 'TEMPER_GRPC_ADDR')?.value).toBe(`0.0.0.0:${port}`);
      const pod = d.spec.template.spec;
      expect(pod.securityContext).toEqual(expect.objectContaining({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }));
      expect(c.securityContext).toEqual(expect.objectContaining({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } }));
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.serviceAccountName).toBe(name(svc));
      r.find('ServiceAccount', name(svc));
      // The PDB selects exactly this Deployment's pods.
      const pdb = r.find('PodDisruptionBudget', name(svc));
      expect(pdb.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
      for (const [k, val] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(val);
      // The Service reaches the same pods on the gRPC port.
      const s = r.find('Service', name(svc));
      expect(s.spec.selector).toEqual(d.spec.selector.matchLabels);
      expect(s.spec.ports[0]).toEqual(expect.objectContaining({ name: 'grpc', port, targetPort: 'grpc' }));
      // Each service finds the others by their Service names.
      for (const other of services.filter((o) => o !== svc)) {
        expect(env(d, `TEMPER_${other.toUpperCase().replace('-', '_')}_ADDR`)?.value).toBe(`${name(other)}:${defaultPorts[other]}`);
      }
    }
  });

  it('the learner is a single replica replaced by Recreate', () => {
    for (const r of Object.values(rendered)) {
      const d = r.find('Deployment', name('learner'));
      expect(d.spec.replicas).toBe(1);
      expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    }
  });

  it('RBAC grants the CLI read access, logs and port-forward in the namespace, and the services nothing', async () => {
    const role = rendered.default.find('Role', 'rl-temper-client');
    const rules = role.rules as { resources: string[]; verbs: string[] }[];
    const verbs = (res: string) => rules.filter((x) => x.resources.includes(res)).flatMap((x) => x.verbs).sort();
    expect(verbs('pods')).toEqual(['get', 'list', 'watch']);
    expect(verbs('pods/log')).toEqual(['get']);
    expect(verbs('pods/portforward')).toEqual(['create', 'get']);
    expect(verbs('deployments')).toEqual(['get', 'list', 'watch']);
    expect(rules.every((x) => x.verbs.every((v) => ['get', 'list', 'watch', 'create'].includes(v)))).toBe(true);
    expect(rules.filter((x) => x.verbs.includes('create')).flatMap((x) => x.resources)).toEqual(['pods/portforward']);
    expect(JSON.stringify(rules)).not.toMatch(/"\*"|secrets|configmaps/);
    expect(rendered.default.all('RoleBinding')).toEqual([]);
    expect(rendered.default.all('ClusterRole')).toEqual([]);
    const bound = await render(chart, { set: ['rbac.clientSubjects[0].kind=Group', 'rbac.clientSubjects[0].name=ml-researchers', 'rbac.clientSubjects[0].apiGroup=rbac.authorization.k8s.io'] });
    expect(bound.find('RoleBinding', 'rl-temper-client').subjects).toEqual([{ kind: 'Group', name: 'ml-researchers', apiGroup: 'rbac.authorization.k8s.io' }]);
  });

  it('NetworkPolicies let in only gRPC from the release (and allowed clients), and out only to DNS, NATS and the release', () => {
    for (const svc of services) {
      const np = rendered.default.find('NetworkPolicy', name(svc));
      const d = rendered.default.find('Deployment', name(svc));
      expect(np.spec.podSelector.matchLabels).toEqual(d.spec.selector.matchLabels);
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(np.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'temper', 'app.kubernetes.io/instance': 'rl' } } }], ports: [{ port: 'grpc', protocol: 'TCP' }] }]);
      const egressPorts = np.spec.egress.flatMap((e: { ports: { port: number }[] }) => e.ports.map((p) => p.port));
      expect(egressPorts.sort()).toEqual([4222, 50051, 50052, 50053, 50054, 53, 53].sort());
      const natsRule = np.spec.egress.find((e: { ports: { port: number }[] }) => e.ports[0].port === 4222);
      expect(natsRule.to).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'nats', 'app.kubernetes.io/instance': 'rl' } } }]);
    }
    // With OTLP and metrics on, their ports open too.
    const np = rendered['object-store'].find('NetworkPolicy', name('scorer'));
    expect(np.spec.ingress.map((i: { ports: { port: unknown }[] }) => i.ports[0].port)).toEqual(['grpc', 'metrics']);
    expect(np.spec.egress.some((e: { ports: { port: number }[] }) => e.ports[0].port === 4318)).toBe(true);
  });
});

describe('security by default', () => {
  const tlsEnv = { TEMPER_TLS_CERT: '/var/run/secrets/temper/tls/tls.crt', TEMPER_TLS_KEY: '/var/run/secrets/temper/tls/tls.key', TEMPER_TLS_CA: '/var/run/secrets/temper/tls/ca.crt' };

  it.each(Object.keys(variants))('every service serves TLS from its cert-manager Secret and takes its tokens from a Secret (%s)', (v) => {
    const r = rendered[v];
    for (const svc of services) {
      const d = r.find('Deployment', name(svc));
      for (const [k, val] of Object.entries(tlsEnv)) expect(env(d, k)?.value).toBe(val);
      expect(env(d, 'TEMPER_TLS_CLIENT_AUTH')?.value).toBe('none');
      // Nothing turns the defences off.
      expect(env(d, 'TEMPER_PLAINTEXT')).toBeUndefined();
      expect(env(d, 'TEMPER_AUTH')).toBeUndefined();
      expect(env(d, 'TEMPER_READ_ACCESS')?.value).toBe('credential');
      expect(env(d, 'TEMPER_CONTROL_TOKENS')?.valueFrom).toEqual({ secretKeyRef: { name: 'rl-temper-auth', key: 'control-token' } });
      expect(env(d, 'TEMPER_READ_TOKENS')?.valueFrom).toEqual({ secretKeyRef: { name: 'rl-temper-auth', key: 'read-token' } });
      expect(env(d, 'TEMPER_AUTH_TOKEN')?.valueFrom).toEqual({ secretKeyRef: { name: 'rl-temper-auth', key: 'control-token' } });
      const pod = d.spec.template.spec;
      expect(pod.volumes).toContainEqual({ name: 'tls', secret: { secretName: name(`${svc}-tls`), defaultMode: 0o440 } });
      expect(container(d).volumeMounts).toContainEqual({ name: 'tls', mountPath: '/var/run/secrets/temper/tls', readOnly: true });
      const cert = r.find('Certificate', name(svc));
      expect(cert.spec.secretName).toBe(name(`${svc}-tls`));
      expect(cert.spec.commonName).toBe(name(svc));
      expect(cert.spec.dnsNames).toEqual([name(svc), `${name(svc)}.temper`, `${name(svc)}.temper.svc`, `${name(svc)}.temper.svc.cluster.local`, 'localhost']);
      expect(cert.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
      expect(cert.spec.issuerRef).toEqual({ name: 'rl-temper-ca', kind: 'Issuer', group: 'cert-manager.io' });
    }
    // The release's own CA: a self-signed root, kept in a Secret, issuing through a CA issuer.
    expect(r.find('Issuer', 'rl-temper-selfsigned').spec).toEqual({ selfSigned: {} });
    expect(r.find('Certificate', 'rl-temper-ca').spec).toEqual(expect.objectContaining({ isCA: true, secretName: 'rl-temper-ca', issuerRef: expect.objectContaining({ name: 'rl-temper-selfsigned' }) }));
    expect(r.find('Issuer', 'rl-temper-ca').spec).toEqual({ ca: { secretName: 'rl-temper-ca' } });
    const tokens = r.find('Secret', 'rl-temper-auth');
    const control = Buffer.from(tokens.data['control-token'], 'base64').toString();
    const read = Buffer.from(tokens.data['read-token'], 'base64').toString();
    expect(control).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(read).toMatch(/^[A-Za-z0-9]{40}$/);
    expect(read).not.toBe(control);
    expect(tokens.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
  });

  it('mutual TLS, the user’s issuer and the user’s token Secret', async () => {
    const r = await render(chart, {
      set: [
        'tls.mutual=true',
        'tls.certManager.issuerRef.name=corp-ca',
        'tls.certManager.issuerRef.kind=ClusterIssuer',
        'auth.existingSecret=team-tokens',
        'auth.readAccess=open',
        'auth.controlIdentities[0]=ops',
        'auth.controlIdentities[1]=ci-bot',
      ],
    });
    const d = r.find('Deployment', name('learner'));
    expect(env(d, 'TEMPER_TLS_CLIENT_AUTH')?.value).toBe('require');
    expect(env(d, 'TEMPER_CONTROL_TOKENS')?.valueFrom).toEqual({ secretKeyRef: { name: 'team-tokens', key: 'control-token' } });
    expect(env(d, 'TEMPER_READ_ACCESS')?.value).toBe('open');
    expect(env(d, 'TEMPER_CONTROL_IDENTITIES')?.value).toBe('ops,ci-bot');
    expect(r.find('Certificate', name('learner')).spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(r.all('Issuer')).toEqual([]);
    // No tokens of the chart's: only the NATS users' Secrets.
    expect(r.all('Secret').map((x) => x.metadata.name)).toEqual(['rl-temper-nats-users', 'rl-temper-nats-auth']);
  });

  it('one Secret of the user’s for every service instead of cert-manager, and a clear message without its name', async () => {
    const r = await render(chart, { set: ['tls.source=existingSecret', 'tls.existingSecret=temper-tls'] });
    expect(r.all('Certificate')).toEqual([]);
    for (const svc of services) expect(r.find('Deployment', name(svc)).spec.template.spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'temper-tls', defaultMode: 0o440 } });
    const unnamed = await template(chart, { set: ['tls.source=existingSecret'] });
    expect(unnamed.code).not.toBe(0);
    expect(unnamed.stderr).toContain('tls.existingSecret must name the Secret with tls.crt, tls.key and ca.crt');
    const plaintext = await template(chart, { set: ['tls.source=none'] });
    expect(plaintext.stderr).toMatch(/\/tls\/source': value must be one of 'certManager', 'existingSecret'/);
  });

  it('the probe the pods run is a file of the build (test/security.test.ts runs it over TLS)', () => {
    const command = container(rendered.default.find('Deployment', name('scorer'))).startupProbe as { exec: { command: string[] } };
    expect(fs.existsSync(path.join(chartDir, '..', '..', command.exec.command[1]))).toBe(true);
  });
});

describe('NATS', () => {
  it('bundled: the services reach the NATS chart’s service over TLS, each as its own user', () => {
    const users = rendered.default.find('Secret', 'rl-temper-nats-users');
    expect(Object.keys(users.data).sort()).toEqual([...services].sort());
    for (const svc of services) {
      const d = rendered.default.find('Deployment', name(svc));
      expect(env(d, 'NATS_URL')?.value).toBe('tls://rl-nats.temper.svc:4222');
      expect(env(d, 'NATS_USER')?.value).toBe(busAccess[svc].user);
      expect(env(d, 'NATS_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'rl-temper-nats-users', key: svc } });
      // The service's own certificate (signed by the CA that signs the NATS server's) is its NATS client certificate.
      expect(env(d, 'NATS_TLS_CA')?.value).toBe('/var/run/secrets/temper/tls/ca.crt');
      expect(env(d, 'NATS_TLS_CERT')?.value).toBe('/var/run/secrets/temper/tls/tls.crt');
      expect(env(d, 'NATS_TLS_KEY')?.value).toBe('/var/run/secrets/temper/tls/tls.key');
    }
    // The passwords are random and differ per service.
    expect(new Set(Object.values(users.data)).size).toBe(services.length);
  });

  it('bundled: cert-manager certifies the NATS service’s names with the services’ issuer', () => {
    const cert = rendered.default.find('Certificate', 'rl-temper-nats');
    expect(cert.spec.secretName).toBe('rl-temper-nats-tls');
    expect(cert.spec.dnsNames).toEqual(['rl-nats', 'rl-nats.temper', 'rl-nats.temper.svc', 'rl-nats.temper.svc.cluster.local']);
    expect(cert.spec.issuerRef).toEqual(rendered.default.find('Certificate', name('learner')).spec.issuerRef);
  });

  it('bundled: the NATS chart’s values serve that certificate, verify clients and include the users', () => {
    const values = parseYaml(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')).nats;
    // The NATS chart templates `tplYaml` values; the release is "rl" here.
    const tpl = (v: { tplYaml: string }) => v.tplYaml.replace('{{ .Release.Name }}', 'rl');
    const tls = values.config.nats.tls;
    expect(tls.enabled).toBe(true);
    expect(tpl(tls.secretName)).toBe(rendered.default.find('Certificate', 'rl-temper-nats').spec.secretName);
    expect(tls.merge).toEqual({ ca_file: `${tls.dir}/ca.crt`, verify: true });
    const volume = values.podTemplate.patch[0].value;
    const mount = values.container.patch[0].value;
    expect(mount.name).toBe(volume.name);
    expect(tpl(volume.secret.secretName)).toBe(rendered.default.find('Secret', 'rl-temper-nats-auth').metadata.name);
    // Included relative to the NATS chart's config file, /etc/nats-config/nats.conf.
    expect(path.posix.join('/etc/nats-config', values.config.merge.$include)).toBe(`${mount.mountPath}/auth.conf`);
    expect(values.natsBox.enabled).toBe(false);
  });

  it('bundled: a real nats-server with the rendered users admits each service with its password, to its own subjects only', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-chart-nats-'));
    const ca = makeTestCa(path.join(dir, 'pki'), 'chart-ca');
    const server = ca.issue('nats');
    const client = ca.issue('service');
    // The layout of the NATS pod: the chart's config includes the users from the mounted Secret.
    fs.mkdirSync(path.join(dir, 'nats-config'));
    fs.mkdirSync(path.join(dir, 'temper-nats-auth'));
    fs.writeFileSync(path.join(dir, 'temper-nats-auth', 'auth.conf'), rendered.default.find('Secret', 'rl-temper-nats-auth').stringData['auth.conf']);
    const values = parseYaml(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')).nats;
    fs.writeFileSync(
      path.join(dir, 'nats-config', 'nats.conf'),
      `tls { cert_file: "${server.cert}", key_file: "${server.key}", ca_file: "${ca.cert}", verify: true }\ninclude ${values.config.merge.$include}\n`,
    );
    const nats = await startNatsServer({ args: ['-c', path.join(dir, 'nats-config', 'nats.conf')] });
    const passwords = rendered.default.find('Secret', 'rl-temper-nats-users').data;
    const saved = { ...process.env };
    try {
      for (const svc of services) {
        Object.assign(process.env, { NATS_USER: busAccess[svc].user, NATS_PASSWORD: Buffer.from(passwords[svc], 'base64').toString(), NATS_TLS_CA: ca.cert, NATS_TLS_CERT: client.cert, NATS_TLS_KEY: client.key });
        const bus = await connectBus(nats.url, `chart-${svc}`, { service: svc });
        try {
          // Each may do its own part, and not another's: only the scorer scores.
          const scored = bus.js.publish(subjects.scored('chart'), new Uint8Array([1]));
          if (svc === 'scorer') await expect(scored).resolves.toMatchObject({ stream: streams.scored.name });
          else await expect(scored).rejects.toThrow(/Permissions Violation/);
        } finally {
          await bus.close();
        }
      }
      process.env.NATS_PASSWORD = 'not-the-password';
      await expect(connectBus(nats.url, 'chart-guess', { service: 'scorer' })).rejects.toThrow(/cannot reach NATS/);
    } finally {
      process.env = saved;
      await nats.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bundled with TLS switched off: plaintext NATS, still one user per service', async () => {
    const r = await render(chart, { set: ['nats.config.nats.tls.enabled=false'] });
    const d = r.find('Deployment', name('generator'));
    expect(env(d, 'NATS_URL')?.value).toBe('nats://rl-nats.temper.svc:4222');
    expect(env(d, 'NATS_TLS_CA')).toBeUndefined();
    expect(env(d, 'NATS_USER')?.value).toBe(busAccess.generator.user);
    expect(r.all('Certificate').map((c) => c.metadata.name)).not.toContain('rl-temper-nats');
  });

  it('bundled: the users are rendered from the object store’s bucket prefix', async () => {
    const r = await render(chart, { values: ['ci/object-store-values.yaml'], set: ['checkpoints.nats.bucket=ckpt'], extra: crdApis });
    const conf = r.find('Secret', 'rl-temper-nats-auth').stringData['auth.conf'];
    expect(conf).toContain('"$O.ckpt-blobs.>"');
    expect(conf).not.toContain('__CHECKPOINT_BUCKET__');
  });

  it('external: the URL from values, credentials from the Secret', () => {
    const d = rendered['external-nats'].find('Deployment', name('generator'));
    expect(env(d, 'NATS_URL')?.value).toBe('nats://nats.messaging.svc:4222');
    expect(env(d, 'NATS_USER')?.valueFrom).toEqual({ secretKeyRef: { name: 'temper-nats', key: 'username' } });
    expect(env(d, 'NATS_PASSWORD')?.valueFrom).toEqual({ secretKeyRef: { name: 'temper-nats', key: 'password' } });
    const np = rendered['external-nats'].find('NetworkPolicy', name('generator'));
    const natsRule = np.spec.egress.find((e: { ports: { port: number }[] }) => e.ports[0].port === 4222);
    expect(natsRule.to).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'messaging' } } }]);
    const so = rendered['external-nats'].find('ScaledObject', name('scorer'));
    expect(so.spec.triggers[0].metadata.natsServerMonitoringEndpoint).toBe('nats.messaging.svc:8222');
  });

  it('a .creds file from a Secret is mounted read-only', async () => {
    const r = await render(chart, { set: ['nats.enabled=false', 'externalNats.url=nats://n:4222', 'externalNats.auth.type=creds', 'externalNats.auth.existingSecret=nats-creds'] });
    const d = r.find('Deployment', name('learner'));
    expect(env(d, 'NATS_CREDS')?.value).toBe('/var/run/secrets/temper/nats/nats.creds');
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'nats-creds', secret: { secretName: 'nats-creds', defaultMode: 0o440, items: [{ key: 'nats.creds', path: 'nats.creds' }] } });
    expect(container(d).volumeMounts).toContainEqual({ name: 'nats-creds', mountPath: '/var/run/secrets/temper/nats', readOnly: true });
  });

  it('external over TLS: the CA (and a client certificate) from a Secret of the user’s', async () => {
    const r = await render(chart, {
      set: ['nats.enabled=false', 'externalNats.url=tls://n:4222', 'externalNats.tls.enabled=true', 'externalNats.tls.existingSecret=nats-ca', 'externalNats.tls.certKey=tls.crt', 'externalNats.tls.keyKey=tls.key'],
    });
    const d = r.find('Deployment', name('scorer'));
    expect(env(d, 'NATS_TLS_CA')?.value).toBe('/var/run/secrets/temper/nats-tls/ca.crt');
    expect(env(d, 'NATS_TLS_CERT')?.value).toBe('/var/run/secrets/temper/nats-tls/tls.crt');
    expect(env(d, 'NATS_USER')).toBeUndefined();
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'nats-tls', secret: { secretName: 'nats-ca', defaultMode: 0o440 } });
    expect(container(d).volumeMounts).toContainEqual({ name: 'nats-tls', mountPath: '/var/run/secrets/temper/nats-tls', readOnly: true });
    expect(r.all('Secret').map((x) => x.metadata.name)).not.toContain('rl-temper-nats-users');
    const noSecret = await template(chart, { set: ['nats.enabled=false', 'externalNats.url=tls://n:4222', 'externalNats.tls.enabled=true'] });
    expect(noSecret.code).not.toBe(0);
    expect(noSecret.stderr).toContain('externalNats.tls.existingSecret must name the Secret');
  });

  it('external without a URL, or credentials without a Secret, fail with a clear message', async () => {
    const noUrl = await template(chart, { set: ['nats.enabled=false'] });
    expect(noUrl.code).not.toBe(0);
    expect(noUrl.stderr).toContain('externalNats.url is required when nats.enabled is false');
    const noSecret = await template(chart, { set: ['nats.enabled=false', 'externalNats.url=nats://n:4222', 'externalNats.auth.type=token'] });
    expect(noSecret.code).not.toBe(0);
    expect(noSecret.stderr).toContain('externalNats.auth.existingSecret must name the Secret');
  });
});

describe('checkpoints', () => {
  it('fs: a kept PVC mounted by the store, one writer replaced by Recreate', () => {
    const pvc = rendered.default.find('PersistentVolumeClaim', 'rl-temper-checkpoints');
    expect(pvc.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    const d = rendered.default.find('Deployment', name('checkpoint-store'));
    expect(env(d, 'TEMPER_CHECKPOINT_BACKEND')?.value).toBe('fs');
    expect(env(d, 'TEMPER_CHECKPOINT_DIR')?.value).toBe('/var/lib/temper/checkpoints');
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'checkpoints', persistentVolumeClaim: { claimName: 'rl-temper-checkpoints', readOnly: false } });
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    // Nobody else mounts it unless asked.
    expect(JSON.stringify(rendered.default.find('Deployment', name('generator')).spec.template.spec.volumes)).not.toContain('checkpoints');
  });

  it('sharing the volume with generators needs ReadWriteMany, and they mount it read-only', async () => {
    const bad = await template(chart, { set: ['checkpoints.pvc.mountIn[0]=generator'] });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('checkpoints.pvc.accessModes must include ReadWriteMany');
    const r = await render(chart, { set: ['checkpoints.pvc.mountIn[0]=generator', 'checkpoints.pvc.accessModes[0]=ReadWriteMany'] });
    const g = r.find('Deployment', name('generator'));
    expect(container(g).volumeMounts).toContainEqual({ name: 'checkpoints', mountPath: '/var/lib/temper/checkpoints', readOnly: true });
    expect(env(g, 'TEMPER_CHECKPOINT_DIR')?.value).toBe('/var/lib/temper/checkpoints');
    expect(r.find('Deployment', name('checkpoint-store')).spec.strategy).toBeUndefined();
  });

  it('nats: the object store, no volume, a scratch dir for uploads, several stores', () => {
    const r = rendered['object-store'];
    // No checkpoint volume (the learner's data volume is its own).
    expect(r.all('PersistentVolumeClaim').map((p) => p.metadata.name)).toEqual(['rl-temper-data']);
    const d = r.find('Deployment', name('checkpoint-store'));
    expect(d.spec.replicas).toBe(2);
    expect(env(d, 'TEMPER_CHECKPOINT_BACKEND')?.value).toBe('nats');
    expect(env(d, 'TEMPER_CHECKPOINT_NATS_BUCKET')?.value).toBe('temper-checkpoints');
    expect(env(d, 'TEMPER_CHECKPOINT_NATS_REPLICAS')?.value).toBe('3');
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'checkpoint-staging', emptyDir: {} });
  });
});

describe('the learner\'s data', () => {
  it('a kept PVC mounted read-only in the learner alone, its mount the only data root', async () => {
    const pvc = rendered.default.find('PersistentVolumeClaim', 'rl-temper-data');
    expect(pvc.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const d = rendered.default.find('Deployment', name('learner'));
    expect(env(d, 'TEMPER_DATA_ROOTS')?.value).toBe('/var/lib/temper/data');
    expect(container(d).volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/temper/data', readOnly: true });
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'rl-temper-data', readOnly: true } });
    for (const svc of services.filter((s) => s !== 'learner')) expect(env(rendered.default.find('Deployment', name(svc)), 'TEMPER_DATA_ROOTS')).toBeUndefined();
    const existing = await render(chart, { set: ['data.pvc.existingClaim=datasets', 'data.mountPath=/data'] });
    expect(existing.all('PersistentVolumeClaim').map((p) => p.metadata.name)).not.toContain('rl-temper-data');
    const l = existing.find('Deployment', name('learner'));
    expect(l.spec.template.spec.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'datasets', readOnly: true } });
    expect(env(l, 'TEMPER_DATA_ROOTS')?.value).toBe('/data');
    // Off: no volume, no roots, so runs read built-in data only.
    const off = await render(chart, { set: ['data.enabled=false'] });
    expect(env(off.find('Deployment', name('learner')), 'TEMPER_DATA_ROOTS')).toBeUndefined();
    expect(off.all('PersistentVolumeClaim').map((p) => p.metadata.name)).toEqual(['rl-temper-checkpoints']);
  });
});

describe('scaling with KEDA', () => {
  it('scales generator and scorer on their JetStream consumers, from zero; nothing else', () => {
    const r = rendered.keda;
    expect(r.all('ScaledObject').map((s) => s.metadata.name).sort()).toEqual([name('generator'), name('scorer')]);
    const expected = { generator: [streams.rolloutRequests.name, 'generators'], scorer: [streams.rollouts.name, 'scorers'] };
    for (const [svc, [stream, consumer]] of Object.entries(expected)) {
      const so = r.find('ScaledObject', name(svc));
      expect(so.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: name(svc) });
      expect(so.spec.minReplicaCount).toBe(0);
      expect(so.spec.triggers).toEqual([
        expect.objectContaining({ type: 'nats-jetstream', metadata: expect.objectContaining({ stream, consumer, account: '$G', natsServerMonitoringEndpoint: 'rl-nats.temper.svc:8222' }) }),
      ]);
      // KEDA owns the replica count of a scaled Deployment.
      expect(r.find('Deployment', name(svc)).spec.replicas).toBeUndefined();
    }
    expect(r.find('ScaledObject', name('scorer')).spec.triggers[0].metadata.lagThreshold).toBe('8');
    expect(r.find('Deployment', name('learner')).spec.replicas).toBe(1);
    expect(rendered.default.all('ScaledObject')).toEqual([]);
  });

  it('the values name the durable consumers the chart scales on', () => {
    const values = parseYaml(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as { jetstream: Record<string, { stream: string; consumer: string }> };
    expect(values.jetstream.rolloutRequests).toEqual({ stream: streams.rolloutRequests.name, consumer: 'generators' });
    expect(values.jetstream.rollouts).toEqual({ stream: streams.rollouts.name, consumer: 'scorers' });
  });

  it('without KEDA in the cluster, keda.enabled fails with a clear message', async () => {
    const r = await template(chart, { values: ['ci/keda-values.yaml'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('keda.enabled needs KEDA in the cluster');
  });
});

describe('observability', () => {
  it('OTLP endpoint and resource attributes reach every service', () => {
    for (const svc of services) {
      const d = rendered['object-store'].find('Deployment', name(svc));
      expect(env(d, 'OTEL_EXPORTER_OTLP_ENDPOINT')?.value).toBe('http://otel-collector.observability.svc:4318');
      const attrs = env(d, 'OTEL_RESOURCE_ATTRIBUTES')?.value ?? '';
      expect(attrs.split(',')).toEqual(expect.arrayContaining(['k8s.pod.name=$(POD_NAME)', 'k8s.namespace.name=$(POD_NAMESPACE)', 'deployment.environment=staging']));
      // $(POD_NAME) expands only when POD_NAME is defined before it.
      const names = container(d).env.map((e) => e.name);
      expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
      expect(d.spec.template.metadata.annotations).toEqual(expect.objectContaining({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9464' }));
    }
    expect(env(rendered.default.find('Deployment', name('learner')), 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBeUndefined();
  });

  it('a ServiceMonitor scrapes the services’ metrics port', () => {
    const sm = rendered['object-store'].find('ServiceMonitor', 'rl-temper');
    expect(sm.metadata.labels?.release).toBe('prometheus');
    expect(sm.spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    for (const svc of services) expect(rendered['object-store'].find('Service', name(svc)).spec.ports.map((p: { name: string }) => p.name)).toEqual(['grpc', 'metrics']);
  });
});

describe('NOTES.txt', () => {
  it('tells the user how to submit a run', async () => {
    const r = await helm(['install', 'rl', chart, '--dry-run=client', '--namespace', 'ml']);
    expect(r.code).toBe(0);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    expect(notes).toContain('temper k8s submit examples/<spec>.yaml --release rl --namespace ml');
    expect(notes).toContain('kubectl port-forward -n ml svc/rl-temper-learner 50053:50053');
    expect(notes).toContain('temper run --endpoint 127.0.0.1:50053 --tls-server-name rl-temper-learner.ml.svc');
    expect(notes).toContain("kubectl get secret -n ml rl-temper-learner-tls -o jsonpath='{.data.ca\\.crt}' | base64 -d > temper-ca.crt");
    expect(notes).toContain("export TEMPER_AUTH_TOKEN=$(kubectl get secret -n ml rl-temper-auth -o jsonpath='{.data.control-token}' | base64 -d)");
  });
});
