// The generator as its own process (dist/main.js): it starts serving the checkpoint named by
// TEMPER_GENERATOR_CHECKPOINT, answers health and RolloutGenerator calls, samples rollout
// requests from JetStream, follows a new policy version, and stops cleanly on SIGTERM.
import { AckPolicy } from '@nats-io/jetstream';
import * as grpc from '@grpc/grpc-js';
import { freePort, publishMessage, streams, subjects } from '@temper/bus';
import { GetServingInfoResponse, RolloutGeneratorClient, RolloutGroup, RolloutRequest } from '@temper/proto';
import { waitForServing } from '@temper/service';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { pushTinyPolicy, Stack, startStack, waitFor } from './helpers';

const RUN = 'run-service';

describe('generator service process', () => {
  let stack: Stack;
  let child: ChildProcess;
  let client: InstanceType<typeof RolloutGeneratorClient>;
  let stderr = '';
  let v1: string;

  const servingInfo = () => new Promise<GetServingInfoResponse>((resolve, reject) => client.getServingInfo({}, (err, res) => (err ? reject(err) : resolve(res))));

  beforeAll(async () => {
    stack = await startStack();
    v1 = (await pushTinyPolicy(stack, { runId: RUN, version: 1, seed: 41 })).manifest.id;
    const address = `127.0.0.1:${await freePort()}`;
    child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'main.js')], {
      env: {
        ...process.env,
        NATS_URL: stack.nats.url,
        TEMPER_GENERATOR_ADDR: address,
        TEMPER_CHECKPOINT_STORE_ADDR: stack.storeServer.address,
        TEMPER_GENERATOR_CHECKPOINT: v1,
        TEMPER_GENERATOR_ID: 'proc-gen',
        TEMPER_ENGINE_THREADS: '1',
        TEMPER_GENERATOR_ACK_WAIT_S: '5',
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20000)));
    await waitForServing(address, 'temper.v1.RolloutGenerator', 30000).catch((err) => {
      throw new Error(`${err.message}\n${stderr}`);
    });
    client = new RolloutGeneratorClient(address, grpc.credentials.createInsecure());
  }, 60000);

  afterAll(async () => {
    client?.close();
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await stack?.stop();
  });

  it('serves the checkpoint it was started with, as the version its run announced', async () => {
    expect(await servingInfo()).toMatchObject({ checkpointId: v1, policyVersion: 1, runId: RUN, generatorId: 'proc-gen' });
  });

  it('samples rollout requests from JetStream and follows a new version', async () => {
    await stack.bus.jsm.consumers.add(streams.rollouts.name, { durable_name: 'test_reader', ack_policy: AckPolicy.Explicit, filter_subject: subjects.rollout(RUN) });
    const reader = await stack.bus.js.consumers.get(streams.rollouts.name, 'test_reader');
    const ask = async (step: number, minPolicyVersion: number) => {
      const r = RolloutRequest.fromPartial({ key: { runId: RUN, step, groupIndex: 0 }, prompt: { text: 'hello' }, sampling: { temperature: 1, maxNewTokens: 6, n: 2 }, minPolicyVersion });
      await publishMessage(stack.bus.js, subjects.rolloutRequest(RUN), RolloutRequest, r, { msgId: `${RUN}/${step}` });
      const m = await reader.next({ expires: 20000 });
      if (!m) throw new Error(`no rollout group for step ${step}\n${stderr}`);
      m.ack();
      return RolloutGroup.decode(m.data);
    };
    const first = await ask(0, 1);
    expect(first).toMatchObject({ policyVersion: 1, generatorId: 'proc-gen' });
    expect(first.completions).toHaveLength(2);

    const v2 = (await pushTinyPolicy(stack, { runId: RUN, version: 2, seed: 42 })).manifest.id;
    const second = await ask(1, 2);
    expect(second.policyVersion).toBe(2);
    expect(await servingInfo()).toMatchObject({ checkpointId: v2, policyVersion: 2 });
  }, 60000);

  it('stops cleanly on SIGTERM, logging JSON lines', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.msg === 'serving')).toMatchObject({ service: 'generator', checkpoint: v1, policy_version: 1 });
    expect(lines.find((l) => l.msg === 'rollout group published' && l.step === 1)).toMatchObject({ run: RUN, policy_version: 2 });
    expect(lines.filter((l) => l.level === 'error' || l.msg === 'error while stopping')).toEqual([]);
    await waitFor('the consumer to have nothing outstanding', async () => {
      const c = await stack.bus.jsm.consumers.info(streams.rolloutRequests.name, 'generators');
      return c.num_ack_pending === 0 || undefined;
    });
  }, 30000);
});
