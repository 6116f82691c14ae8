// No open doors: every service as its own process serving TLS with certificates this test
// makes, control calls refused without a control credential (and nothing changed by them),
// read calls allowed to a read token, mutual TLS identities on a checkpoint store, and a
// service that refuses to start in the clear off loopback or without any TLS settings.
import * as grpc from '@grpc/grpc-js';
import { CheckpointClient } from '@temper/checkpoint-client';
import { RolloutGeneratorClient, RunState } from '@temper/proto';
import {
  authPolicyFromEnv,
  checkHealth,
  ClientAuthOptions,
  ClientSecurity,
  grpcClientSetup,
  isLoopbackAddress,
  serverSecurityFromEnv,
  startGrpcServer,
} from '@temper/service';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { LocalStack, serviceEntry, startLocalStack } from '../apps/cli/src/local-stack';
import { CheckpointStore, checkpointStoreBinding, FsBackend } from '../services/checkpoint-store/src';
import { makeTestCa, TestCa } from './harness/certificates';
import { makeModelDir } from './harness/checkpoint-dirs';
import { testNatsUrl } from './harness/nats';

const CONTROL = 'control-token-for-the-test';
const READ = 'read-token-for-the-test';

const spec = `
name: guarded
seed: 1
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128, tie_word_embeddings: true }
stages:
  - name: rl
    grpo: { steps: 200, prompts_per_step: 2, group_size: 2, task: { uri: "builtin:arithmetic" }, sampling: { max_new_tokens: 8 } }
`;

const codeOf = (p: Promise<unknown>) => p.then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
const unary = <Res>(fn: (cb: (err: grpc.ServiceError | null, res?: Res) => void) => void) =>
  new Promise<Res>((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));

describe('TLS and authorisation across the services', () => {
  let dir: string;
  let ca: TestCa;
  let stack: LocalStack;
  let tls: ClientSecurity;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-security-'));
    ca = makeTestCa(path.join(dir, 'pki'), 'temper-test-ca');
    const server = ca.issue('temper-services');
    tls = { kind: 'tls', files: { ca: ca.cert } };
    stack = await startLocalStack({
      logs: { dir: path.join(dir, 'logs') },
      env: {
        TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'),
        TEMPER_TLS_CERT: server.cert,
        TEMPER_TLS_KEY: server.key,
        TEMPER_TLS_CA: ca.cert,
        TEMPER_AUTH: 'enforce',
        TEMPER_CONTROL_TOKENS: CONTROL,
        TEMPER_READ_TOKENS: READ,
        // What the learner and the generator present to the store.
        TEMPER_AUTH_TOKEN: CONTROL,
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const learner = (auth: ClientAuthOptions) => new LearnerClient(stack.address('learner'), auth);

  it('serves TLS only: a plaintext client and a client trusting another CA are both refused', async () => {
    expect(stack.clientAuth.security.kind).toBe('tls');
    expect(await checkHealth(stack.address('scorer'), '', 5000, tls)).toBe('SERVING');
    const plain = learner({ security: { kind: 'plaintext-loopback' }, token: CONTROL });
    const otherCa = makeTestCa(path.join(dir, 'pki'), 'another-ca');
    const stranger = learner({ security: { kind: 'tls', files: { ca: otherCa.cert } }, token: CONTROL });
    try {
      expect(await codeOf(plain.listRuns())).toBe(grpc.status.UNAVAILABLE);
      expect(await codeOf(stranger.listRuns())).toBe(grpc.status.UNAVAILABLE);
    } finally {
      plain.close();
      stranger.close();
    }
  });

  it('the pods’ health probe script answers over TLS with the pod’s own settings', () => {
    const port = stack.address('learner').split(':').pop()!;
    const probe = (p: string) =>
      spawnSync(process.execPath, [path.join(__dirname, '..', 'packages', 'service', 'dist', 'health-probe.js'), p], {
        env: { PATH: process.env.PATH, TEMPER_TLS_CA: ca.cert, TEMPER_PROBE_TIMEOUT_MS: '2000' },
        encoding: 'utf8',
      });
    expect(probe(port).status).toBe(0);
    const closed = probe('1');
    expect(closed.status).toBe(1);
    expect(closed.stderr).toMatch(/health check failed/);
  });

  it('refuses control calls without a control credential, and they change nothing', async () => {
    const anonymous = learner({ security: tls, token: '' });
    const reader = learner({ security: tls, token: READ });
    const forger = learner({ security: tls, token: 'not-a-token' });
    const admin = learner({ security: tls, token: CONTROL });
    const create = (c: LearnerClient) => c.createRun({ spec: { $case: 'specYaml', value: spec } });
    try {
      expect(await codeOf(create(anonymous))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await codeOf(create(forger))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await codeOf(create(reader))).toBe(grpc.status.PERMISSION_DENIED);
      // Reads: a read token may, no credential may not.
      expect(await codeOf(anonymous.listRuns())).toBe(grpc.status.UNAUTHENTICATED);
      expect((await reader.listRuns()).runs).toEqual([]);

      const { run } = await create(admin);
      expect(await codeOf(reader.cancelRun(run!.runId))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(anonymous.cancelRun(run!.runId))).toBe(grpc.status.UNAUTHENTICATED);
      const after = (await reader.listRuns()).runs;
      expect(after.map((r) => r.runId)).toEqual([run!.runId]);
      expect(after[0].state).not.toBe(RunState.RUN_STATE_CANCELLED);
      expect((await admin.cancelRun(run!.runId)).run?.runId).toBe(run!.runId);
    } finally {
      for (const c of [anonymous, reader, forger, admin]) c.close();
    }
  });

  it('guards the checkpoint store and the generator the same way', async () => {
    const admin = new CheckpointClient(stack.address('checkpoint-store'), { security: tls, token: CONTROL });
    const reader = new CheckpointClient(stack.address('checkpoint-store'), { security: tls, token: READ });
    const anonymous = new CheckpointClient(stack.address('checkpoint-store'), { security: tls, token: '' });
    const { credentials, options } = grpcClientSetup(stack.address('generator'), { security: tls, token: READ });
    const generator = new RolloutGeneratorClient(stack.address('generator'), credentials, options);
    try {
      const model = await makeModelDir(path.join(dir, 'model'));
      expect(await codeOf(reader.pushDir(model, { runId: 'sec' }, { retries: 0 }))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(anonymous.pushDir(model, { runId: 'sec' }, { retries: 0 }))).toBe(grpc.status.UNAUTHENTICATED);
      expect((await reader.list({ runId: 'sec' })).checkpoints).toEqual([]);
      const { manifest } = await admin.pushDir(model, { runId: 'sec' });

      expect(await codeOf(reader.tag(manifest.id, 'stolen'))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(anonymous.delete(manifest.id, true))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await codeOf(reader.delete(manifest.id, true))).toBe(grpc.status.PERMISSION_DENIED);
      const listed = await reader.list({ runId: 'sec' });
      expect(listed.checkpoints.map((c) => c.id)).toEqual([manifest.id]);
      expect(listed.tags[manifest.id] ?? []).toEqual([]);
      // Pulling is a read call.
      await reader.pullDir(manifest.id, path.join(dir, 'pulled'));

      const before = await unary((cb) => generator.getServingInfo({}, cb));
      expect(await codeOf(unary((cb) => generator.loadPolicy({ checkpoint: manifest.id, policyVersion: 7 }, cb)))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await unary((cb) => generator.getServingInfo({}, cb))).toEqual(before);
    } finally {
      for (const c of [admin, reader, anonymous]) c.close();
      generator.close();
    }
  });
});

describe('mutual TLS identities', () => {
  let dir: string;
  let ca: TestCa;
  let store: CheckpointStore;
  let server: Awaited<ReturnType<typeof startGrpcServer>>;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-mtls-'));
    ca = makeTestCa(path.join(dir, 'pki'), 'mtls-ca');
    const serving = ca.issue('store');
    store = await CheckpointStore.open({ backend: await FsBackend.open(path.join(dir, 'store')), stagingDir: path.join(dir, 'store', 'uploads') });
    server = await startGrpcServer({
      address: '127.0.0.1:0',
      services: [checkpointStoreBinding(store)],
      security: { kind: 'tls', files: { cert: serving.cert, key: serving.key, ca: ca.cert }, requireClientCert: true },
      auth: authPolicyFromEnv({ TEMPER_CONTROL_IDENTITIES: 'ops', TEMPER_READ_IDENTITIES: 'viewer' }),
    });
  });
  afterAll(async () => {
    await server?.stop(1000);
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const clientAs = (files: { ca: string; cert?: string; key?: string }) => new CheckpointClient(server.address, { security: { kind: 'tls', files }, token: '' });

  it('lets the certificate say who calls: control, read, or nobody', async () => {
    const ops = clientAs({ ca: ca.cert, ...ca.issue('ops') });
    const viewer = clientAs({ ca: ca.cert, ...ca.issue('viewer') });
    const nameless = clientAs({ ca: ca.cert, ...ca.issue('someone-else') });
    const noCert = clientAs({ ca: ca.cert });
    const forged = makeTestCa(path.join(dir, 'pki'), 'forged-ca');
    const impostor = clientAs({ ca: ca.cert, ...forged.issue('ops') });
    try {
      const { manifest } = await ops.pushDir(await makeModelDir(path.join(dir, 'model')), { runId: 'm' });
      expect((await viewer.list({ runId: 'm' })).checkpoints).toHaveLength(1);
      expect(await codeOf(viewer.tag(manifest.id, 'x'))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(nameless.list({ runId: 'm' }))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(noCert.list({ runId: 'm' }))).toBe(grpc.status.UNAVAILABLE);
      expect(await codeOf(impostor.tag(manifest.id, 'x'))).toBe(grpc.status.UNAVAILABLE);
      expect((await ops.tag(manifest.id, 'good')).id).toBe(manifest.id);
      expect((await viewer.list({ runId: 'm' })).tags[manifest.id]).toEqual(['good']);
    } finally {
      for (const c of [ops, viewer, nameless, noCert, impostor]) c.close();
    }
  });
});

describe('transport settings', () => {
  it('allows plaintext on loopback only, and only when asked for', async () => {
    expect(() => serverSecurityFromEnv({})).toThrow(/TEMPER_TLS_CERT/);
    expect(() => serverSecurityFromEnv({ TEMPER_PLAINTEXT: 'yes' })).toThrow(/TEMPER_PLAINTEXT must be "loopback"/);
    expect(serverSecurityFromEnv({ TEMPER_PLAINTEXT: 'loopback' })).toEqual({ kind: 'plaintext-loopback' });
    for (const a of ['127.0.0.1:1', 'localhost:2', '[::1]:3', '127.8.9.10:4']) expect(isLoopbackAddress(a)).toBe(true);
    for (const a of ['0.0.0.0:1', '10.0.0.1:2', '[::]:3', 'learner.temper.svc:4', 'localhost.evil.example:5']) expect(isLoopbackAddress(a)).toBe(false);
    await expect(startGrpcServer({ address: '0.0.0.0:0', services: [], security: { kind: 'plaintext-loopback' }, auth: { mode: 'none' } })).rejects.toThrow(/loopback addresses only, not on 0\.0\.0\.0:0/);
    await expect(
      startGrpcServer({ address: '127.0.0.1:0', services: [], security: { kind: 'tls', files: { cert: '/nonexistent/tls.crt', key: '/nonexistent/tls.key' }, requireClientCert: false } }),
    ).rejects.toThrow(/cannot read the certificate \/nonexistent\/tls\.crt \(TEMPER_TLS_CERT\)/);
    expect(() => grpcClientSetup('10.1.2.3:50053', { security: { kind: 'plaintext-loopback' } })).toThrow(/loopback addresses only/);
  });

  it('a service started without TLS settings or the plaintext choice refuses to start and says why', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: testNatsUrl(), TEMPER_SCORER_ADDR: '127.0.0.1:0', TEMPER_SCORER_THREADS: '1' };
    delete env.TEMPER_PLAINTEXT;
    const r = spawnSync(process.execPath, [serviceEntry('scorer')], { env, encoding: 'utf8', timeout: 30000 });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/no TLS certificate for the gRPC server: set TEMPER_TLS_CERT and TEMPER_TLS_KEY/);
  });

  it('every method of every service has an access level', async () => {
    const broken = { ...checkpointStoreBinding({} as CheckpointStore), access: { listCheckpoints: 'read' as const } };
    await expect(startGrpcServer({ address: '127.0.0.1:0', services: [broken], auth: { mode: 'none' } })).rejects.toThrow(/method putCheckpoint has no access level/);
  });
});
