// The real service process (dist/main.js) with the harness's nats-server, driven by the
// `temper ckpt` CLI (apps/cli/dist): push, ls, tag, lineage, pull; run `npx tsc -b` first.
import * as grpc from '@grpc/grpc-js';
import { connectBus, freePort } from '@temper/bus';
import { ListCheckpointsRequest } from '@temper/proto';
import { addressEnvVar, waitForServing } from '@temper/service';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { testNatsUrl } from '../../../test/harness/nats';
import { OtlpReceiver, startOtlpReceiver } from '../../../test/harness/otlp-receiver';
import { CheckpointClient } from '@temper/checkpoint-client';
import { expectSameTree, makeModelDir, tempDir } from '../../../test/harness/checkpoint-dirs';

const repo = path.resolve(__dirname, '../../..');
const serviceMain = path.join(repo, 'services/checkpoint-store/dist/main.js');
const cliMain = path.join(repo, 'apps/cli/dist/main.js');

describe.each(['fs', 'nats'] as const)('temper-checkpoint-store process with the %s backend, driven by temper ckpt', (backend) => {
  let child: ChildProcess;
  let address: string;
  let work: string;
  let otlp: OtlpReceiver;

  const temper = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [cliMain, 'ckpt', ...args], { env: { ...process.env, [addressEnvVar('checkpoint-store')]: address } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = async (...args: string[]) => {
    const res = await temper(...args, '--json');
    if (res.code !== 0) throw new Error(`temper ckpt ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
    return JSON.parse(res.stdout.trim().split('\n').at(-1)!);
  };

  beforeAll(async () => {
    work = await tempDir();
    otlp = await startOtlpReceiver();
    address = `127.0.0.1:${await freePort()}`;
    child = spawn(process.execPath, [serviceMain], {
      env: {
        ...process.env,
        NATS_URL: testNatsUrl(),
        [addressEnvVar('checkpoint-store')]: address,
        TEMPER_CHECKPOINT_BACKEND: backend,
        TEMPER_CHECKPOINT_DIR: path.join(work, 'store'),
        TEMPER_CHECKPOINT_NATS_BUCKET: `test-svc-${process.pid}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    await Promise.race([
      waitForServing(address, 'temper.v1.CheckpointStore', 20000),
      new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`service exited ${code}: ${log}`)))),
    ]);
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await otlp?.close();
    await fsp.rm(work, { recursive: true, force: true });
    if (backend === 'nats') {
      const bus = await connectBus(testNatsUrl(), 'cleanup');
      for (const s of ['blobs', 'meta']) await bus.jsm.streams.delete(`OBJ_test-svc-${process.pid}-${s}`).catch(() => undefined);
      await bus.close();
    }
  });

  it('pushes, lists, tags, follows lineage and pulls back byte for byte', async () => {
    const src = await makeModelDir(path.join(work, 'model'), { shards: 2, shardBytes: 300_000 });
    const root = await json('push', src, '--run', `cli-${backend}`, '--branch', 'stable', '--stage', 'midtrain', '--step', '1000', '--metric', 'loss=2.5', '--tag', `stable-final-${backend}`);
    expect(root.created).toBe(true);
    expect(root.files).toBe(6);

    await fsp.writeFile(path.join(src, 'config.json'), '{"model_type":"llama","decayed":true}');
    const child1 = await json('push', src, '--run', `cli-${backend}`, '--branch', 'decay-a', '--step', '1200', '--parent', `stable-final-${backend}`);
    expect(child1.parent).toBe(root.id);
    // Only the changed file travelled.
    expect(child1.bytes_sent).toBe((await fsp.stat(path.join(src, 'config.json'))).size);

    const listed = await json('ls', '--run', `cli-${backend}`);
    expect(listed.map((r: { id: string }) => r.id)).toEqual([root.id, child1.id]);
    expect(listed[0].tags).toEqual([`stable-final-${backend}`]);

    const tagged = await json('tag', child1.id.slice(0, 12), `best-${backend}`, '--endpoint', address);
    expect(tagged).toEqual({ id: child1.id, tag: `best-${backend}`, removed: false });
    expect((await json('ls', '--tag', `best-${backend}`)).map((r: { id: string }) => r.id)).toEqual([child1.id]);

    const lineage = await json('lineage', root.id.slice(0, 16));
    expect(lineage.branches).toEqual(['decay-a']);
    expect(lineage.descendants.map((d: { id: string }) => d.id)).toEqual([child1.id]);

    const out = path.join(work, 'pulled');
    const pulled = await json('pull', child1.id, out);
    expect(pulled.id).toBe(child1.id);
    await expectSameTree(src, out);

    const refused = await temper('rm', root.id);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('descendant');

    const text = await temper('ls', '--run', `cli-${backend}`);
    expect(text.stdout).toContain(root.id.slice(0, 12));
    expect(text.stdout).toContain('decay-a');
  });

  it("continues the caller's trace: each call is a span under the caller's span", async () => {
    const client = new CheckpointClient(address);
    const traceId = randomBytes(16).toString('hex');
    const parentSpanId = randomBytes(8).toString('hex');
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', `00-${traceId}-${parentSpanId}-01`);
    await new Promise((resolve, reject) => client.raw.listCheckpoints(ListCheckpointsRequest.fromPartial({}), metadata, (err, res) => (err ? reject(err) : resolve(res))));
    client.close();
    const spans = await otlp.waitFor((all) => all.some((sp) => sp.traceId === traceId), 15000);
    const span = spans.find((sp) => sp.traceId === traceId)!;
    expect(span).toMatchObject({ service: 'checkpoint-store', name: 'CheckpointStore/ListCheckpoints', parentSpanId });
  });
});
