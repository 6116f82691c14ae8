// temper k8s status|logs|submit, run as the built CLI (a separate node process, since
// @kubernetes/client-node is an ES module) against an API server on loopback that replays
// stored responses; submit reaches a real learner process (TLS with a certificate made here,
// a control token) through the replayed port-forward.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, NatsServer, startNatsServer } from '@temper/bus';
import { waitForServing } from '@temper/service';
import { makeTestCa } from '../../../test/harness/certificates';
import { loadFixture, ReplayServer, startReplay, writeKubeconfig } from './k8s-replay';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const cliMain = path.join(repoRoot, 'apps', 'cli', 'dist', 'main.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function temper(args: string[], kubeconfig: string, extraEnv: Record<string, string> = {}): Promise<CliResult> {
  // A clean environment: no in-cluster service account, no user kubeconfig.
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: path.dirname(kubeconfig), KUBECONFIG: kubeconfig, ...extraEnv };
  return new Promise((resolve) =>
    execFile(process.execPath, [cliMain, 'k8s', ...args], { env, cwd: repoRoot, timeout: 30000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function replay(fixtures: string[], opts: Parameters<typeof startReplay>[1] = {}, kube: { namespace?: string } = { namespace: 'ml' }) {
  const server = await startReplay(fixtures.map(loadFixture), opts);
  const kc = writeKubeconfig(server.url, kube);
  cleanups.push(() => server.close(), () => fs.rmSync(kc.dir, { recursive: true, force: true }));
  return { server, kubeconfig: kc.file };
}

beforeAll(() => {
  if (!fs.existsSync(cliMain)) throw new Error(`${cliMain} is missing: build first (npx tsc -b)`);
});

describe('temper k8s status', () => {
  let server: ReplayServer;
  let kubeconfig: string;
  beforeAll(async () => {
    ({ server, kubeconfig } = await replay(['status-rl']));
  });

  it('lists each service’s pods with node, GPUs, readiness, restarts and why a pod is not running', async () => {
    const r = await temper(['status', '--release', 'rl'], kubeconfig);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('release rl  namespace ml  context replay  (2/4 pods ready)');
    expect(lines[1].split(/\s+/)).toEqual(['SERVICE', 'POD', 'NODE', 'GPU', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
    const row = (pod: string) => lines.find((l) => l.includes(pod))!.split(/\s{2,}/);
    expect(row('learner-7c9d5b6f4-x2k9p').slice(0, 7)).toEqual(['learner', 'rl-temper-learner-7c9d5b6f4-x2k9p', 'gpu-a100-0', '1', '1/1', 'Running', '0']);
    expect(row('generator-7c9d5b6f4-h7d2q').slice(0, 7)).toEqual(['generator', 'rl-temper-generator-7c9d5b6f4-h7d2q', 'gpu-a100-1', '1', '1/1', 'Running', '0']);
    expect(row('generator-7c9d5b6f4-m4w8z').slice(0, 7)).toEqual(['generator', 'rl-temper-generator-7c9d5b6f4-m4w8z', '<none>', '1', '0/1', 'Pending (Unschedulable)', '0']);
    expect(row('checkpoint-store-7c9d5b6f4-q8r1v').slice(0, 7)).toEqual(['checkpoint-store', 'rl-temper-checkpoint-store-7c9d5b6f4-q8r1v', 'cpu-pool-2', '0', '0/1', 'Running (CrashLoopBackOff)', '2']);
    expect(lines.find((l) => l.startsWith('scorer'))).toMatch(/^scorer\s+\(no pods: scaled to zero\)$/);
    // Services in the order of the pipeline's owners: learner first.
    expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(['learner', 'generator', 'generator', 'scorer', 'checkpoint-store']);
    expect(server.unmatched).toEqual([]);
  });

  it('--json gives the same report as data', async () => {
    const r = await temper(['status', '--release', 'rl', '--json'], kubeconfig);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { namespace: string; services: { service: string; desired: number | null; ready: number; pods: { pod: string; gpus: number; node: string; restarts: number; reason: string }[] }[] };
    expect(report.namespace).toBe('ml');
    const byName = Object.fromEntries(report.services.map((s) => [s.service, s]));
    expect(byName.generator).toEqual(expect.objectContaining({ desired: 2, ready: 1 }));
    expect(byName.generator.pods.map((p) => p.gpus)).toEqual([1, 1]);
    expect(byName.scorer).toEqual(expect.objectContaining({ desired: 0, pods: [] }));
    expect(byName['checkpoint-store'].pods[0]).toEqual(expect.objectContaining({ node: 'cpu-pool-2', restarts: 2, reason: 'CrashLoopBackOff', gpus: 0 }));
  });

  it('an unknown context is named, with the ones that exist', async () => {
    const r = await temper(['status', '--context', 'prod-eu'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('temper k8s status: no context "prod-eu" in the kubeconfig (contexts: replay)\n');
  });
});

describe('temper k8s errors', () => {
  it('forbidden: what was refused, by whom, and which Role grants it', async () => {
    const { server, kubeconfig } = await replay(['status-forbidden']);
    const r = await temper(['status', '--release', 'rl'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^temper k8s status: cannot list (pods|deployments) \(context "replay", namespace "ml"\): forbidden: (pods|deployments\.apps) is forbidden: User "alice" cannot list resource/);
    expect(r.stderr).toContain('"<release>-temper-client" grants what `temper k8s` needs');
    expect(server.unmatched).toEqual([]);
  });

  it('unauthorized: the credentials were refused', async () => {
    const { kubeconfig, server } = await replay(['status-unauthorized']);
    const r = await temper(['status', '--release', 'rl'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the API server at ${server.url} did not accept your credentials (401 Unauthorized`);
    expect(r.stderr).toContain('Log in again or refresh the token of context "replay"');
  });

  it('not found: no release of that name in the namespace', async () => {
    const { kubeconfig } = await replay(['status-not-installed']);
    const r = await temper(['status', '--release', 'rl', '--namespace', 'staging'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no Temper release "rl" in namespace "staging" (context "replay")');
  });

  it('connection refused: the API server cannot be reached', async () => {
    const port = await freePort();
    const kc = writeKubeconfig(`http://127.0.0.1:${port}`, { namespace: 'ml' });
    cleanups.push(() => fs.rmSync(kc.dir, { recursive: true, force: true }));
    const r = await temper(['status'], kc.file);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^temper k8s status: cannot list (pods|deployments): cannot reach the Kubernetes API server at http://127\\.0\\.0\\.1:${port} \\(context "replay", namespace "ml"\\): ECONNREFUSED`));
  });

  it('usage errors exit 2', async () => {
    const kc = writeKubeconfig('http://127.0.0.1:9', {});
    cleanups.push(() => fs.rmSync(kc.dir, { recursive: true, force: true }));
    for (const args of [['frobnicate'], ['logs'], ['status', '--bogus'], ['logs', 'learner', '--tail', 'many']]) {
      const r = await temper(args, kc.file);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('temper k8s <status|logs|submit>');
    }
  });
});

describe('temper k8s logs', () => {
  let server: ReplayServer;
  let kubeconfig: string;
  beforeAll(async () => {
    ({ server, kubeconfig } = await replay(['logs']));
  });

  it('prints the last lines of the learner', async () => {
    const r = await temper(['logs', 'learner', '--release', 'rl', '--tail', '3'], kubeconfig);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2])).toEqual(expect.objectContaining({ msg: 'checkpoint committed', step: 42 }));
  });

  it('--follow streams until the container’s log ends', async () => {
    const r = await temper(['logs', 'learner', '--release', 'rl', '--tail', '2', '--follow'], kubeconfig);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).msg)).toEqual(['step', 'stopping']);
  });

  it('prints every generator replica’s logs, each line prefixed with its pod', async () => {
    const r = await temper(['logs', 'generator', '--release', 'rl'], kubeconfig);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => /^\[([^\]]+)\] (.*)$/.exec(l)!);
    expect(lines.map((m) => [m[1], JSON.parse(m[2]).msg])).toEqual([
      ['rl-temper-generator-7c9d5b6f4-b6t3n', 'serving'],
      ['rl-temper-generator-7c9d5b6f4-h7d2q', 'serving'],
      ['rl-temper-generator-7c9d5b6f4-h7d2q', 'policy version'],
    ]);
    expect(server.unmatched).toEqual([]);
  });

  it('a pod gone between listing and reading is reported as not found', async () => {
    const r = await temper(['logs', 'scorer', '--release', 'rl'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('temper k8s logs: cannot read the logs of pod rl-temper-scorer-7c9d5b6f4-zz91k (context "replay", namespace "ml"): not found: pods "rl-temper-scorer-7c9d5b6f4-zz91k" not found.\n');
  });

  it('a service without pods, and an unknown service, are named', async () => {
    const none = await temper(['logs', 'checkpoint-store', '--release', 'rl'], kubeconfig);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no checkpoint-store pods for release "rl" in namespace "ml"');
    const unknown = await temper(['logs', 'trainer', '--release', 'rl'], kubeconfig);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown service "trainer": one of learner, generator, scorer, checkpoint-store');
  });
});

describe('temper k8s submit', () => {
  let learner: ChildProcess | undefined;
  let learnerPort: number;
  let work: string;
  let credentials: string[];
  // A nats-server of its own: a learner resumes every unfinished run it finds on its NATS.
  let nats: NatsServer | undefined;
  afterAll(async () => {
    learner?.kill('SIGKILL');
    await nats?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-submit-'));
    learnerPort = await freePort();
    nats = await startNatsServer();
    const address = `127.0.0.1:${learnerPort}`;
    // The certificate names the learner's Service, as the chart's does; a port-forward reaches it on loopback.
    const ca = makeTestCa(path.join(work, 'pki'), 'submit-ca');
    const cert = ca.issue('learner', ['rl-temper-learner.ml.svc']);
    credentials = ['--tls-ca', ca.cert, '--token', 'submit-token'];
    learner = spawn(process.execPath, [path.join(repoRoot, 'services', 'learner', 'dist', 'main.js')], {
      env: {
        PATH: process.env.PATH,
        HOME: work,
        NATS_URL: nats.url,
        TEMPER_GRPC_ADDR: address,
        TEMPER_CHECKPOINT_STORE_ADDR: `127.0.0.1:${await freePort()}`,
        TEMPER_ENGINE_THREADS: '1',
        TEMPER_TLS_CERT: cert.cert,
        TEMPER_TLS_KEY: cert.key,
        TEMPER_CONTROL_TOKENS: 'submit-token',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    learner.stderr!.on('data', (d) => (stderr += d));
    // A learner that dies at start fails the tests at once, with its own words.
    const exited = new Promise<never>((_, reject) => learner!.once('exit', (code) => setTimeout(() => reject(new Error(`the learner exited (${code}) before serving:\n${stderr}`)), 50)));
    try {
      await Promise.race([waitForServing(address, '', 30000, { kind: 'tls', files: { ca: ca.cert } }), exited]);
    } catch (err) {
      throw new Error(`${String(err)}\nlearner stderr: ${stderr}`);
    }
  }, 60000);

  it('reaches the learner through the API server’s port-forward; the learner’s answer comes back', async () => {
    const { server, kubeconfig } = await replay(['submit'], { portForward: { 50053: learnerPort } });
    const spec = path.join(work, 'empty-stages.yaml');
    fs.writeFileSync(spec, 'name: no-stages\nstages: []\n');
    const r = await temper(['submit', spec, '--release', 'rl', ...credentials], kubeconfig);
    expect(r.stderr).toBe('temper k8s submit: the learner refused the run spec:\n  invalid run spec:\n    stages: a run needs at least one stage\n');
    expect(r.code).toBe(1);
    expect(server.seen).toContain('GET /api/v1/namespaces/ml/pods/rl-temper-learner-7c9d5b6f4-x2k9p/portforward?ports=50053 (websocket)');
    expect(server.unmatched).toEqual([]);
  });

  it('--endpoint talks to a learner directly, without the cluster', async () => {
    const spec = path.join(work, 'empty-stages.yaml');
    fs.writeFileSync(spec, 'stages: []\n');
    // The token may come from the environment instead of --token.
    const [caFlag, caFile] = credentials;
    const r = await temper(['submit', spec, '--endpoint', `127.0.0.1:${learnerPort}`, caFlag, caFile, '--tls-server-name', 'localhost'], path.join(work, 'no-kubeconfig'), { TEMPER_AUTH_TOKEN: 'submit-token' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('stages: a run needs at least one stage');
  });

  it('without the control token the learner refuses, and says which credential it wants', async () => {
    const spec = path.join(work, 'empty-stages.yaml');
    fs.writeFileSync(spec, 'stages: []\n');
    const endpoint = ['--endpoint', `127.0.0.1:${learnerPort}`, credentials[0], credentials[1]];
    const none = await temper(['submit', spec, ...endpoint], path.join(work, 'no-kubeconfig'));
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/temper k8s submit: the learner \(endpoint 127\.0\.0\.1:\d+\) refused the credentials: .*CreateRun needs a credential/);
    const wrong = await temper(['submit', spec, ...endpoint, '--token', 'guess'], path.join(work, 'no-kubeconfig'));
    expect(wrong.stderr).toContain('the bearer token is not valid');
    // Plaintext to a TLS learner does not get through either.
    const plain = await temper(['submit', spec, '--endpoint', `127.0.0.1:${learnerPort}`, '--plaintext', '--token', 'submit-token'], path.join(work, 'no-kubeconfig'));
    expect(plain.stderr).toMatch(/cannot reach the learner/);
  });

});

describe('temper k8s submit without a learner', () => {
  it('--via service dials the learner Service’s cluster DNS name, and says so when it cannot', async () => {
    const { server, kubeconfig } = await replay(['submit']);
    const spec = path.join(os.tmpdir(), `temper-spec-${process.pid}.yaml`);
    fs.writeFileSync(spec, 'stages: []\n');
    cleanups.push(() => fs.rmSync(spec, { force: true }));
    const r = await temper(['submit', spec, '--release', 'rl', '--via', 'service'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^temper k8s submit: cannot reach the learner \(service rl-temper-learner\.ml\.svc:50053\): /);
    expect(server.seen).toEqual(['GET /api/v1/namespaces/ml/services?labelSelector=app.kubernetes.io/name=temper,app.kubernetes.io/instance=rl,app.kubernetes.io/component=learner']);
  });

  it('a missing spec file is named before anything is contacted', async () => {
    const { server, kubeconfig } = await replay(['submit']);
    const missing = path.join(os.tmpdir(), `temper-no-such-spec-${process.pid}.yaml`);
    const r = await temper(['submit', missing, '--release', 'rl'], kubeconfig);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`temper k8s submit: no run spec at ${missing}\n`);
    expect(server.seen).toEqual([]);
  });
});
