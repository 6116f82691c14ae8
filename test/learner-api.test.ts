// PolicyLearner over gRPC with every service as its own process: bad specs refused with
// their paths, files outside the learner's data roots refused, a run's life (created, listed,
// watched, cancelled), unknown runs reported.
import * as grpc from '@grpc/grpc-js';
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';

const spec = (name: string) => `
name: ${name}
seed: 1
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128, tie_word_embeddings: true }
stages:
  - name: rl
    grpo: { steps: 2, prompts_per_step: 2, group_size: 2, task: { uri: "builtin:arithmetic" }, sampling: { max_new_tokens: 8 } }
`;

describe('PolicyLearner API', () => {
  let stack: LocalStack;
  let client: LearnerClient;
  let dir: string;
  let data: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-learner-api-'));
    // The learner may read files under data/ only; secret/ is beside it.
    data = path.join(dir, 'data');
    fs.mkdirSync(path.join(data, 'gsm8k'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'secret'));
    fs.writeFileSync(path.join(dir, 'secret', 'prompts.jsonl'), '{"prompt":"TOPSECRET","answer":"1"}\n');
    fs.writeFileSync(path.join(data, 'prompts.jsonl'), '{"prompt":"1+1?","answer":"2"}\n');
    fs.writeFileSync(path.join(data, 'gsm8k', 'train.jsonl'), '{"question":"1+1?","answer":"#### 2"}\n');
    fs.symlinkSync(path.join(dir, 'secret', 'prompts.jsonl'), path.join(data, 'link.jsonl'));
    fs.mkdirSync(path.join(data, 'leaky'));
    fs.symlinkSync(path.join(dir, 'secret', 'prompts.jsonl'), path.join(data, 'leaky', 'test.jsonl'));
    // Its own nats-server: this stack's work-queue consumers and runs must not meet other tests'.
    stack = await startLocalStack({ logs: 'ignore', env: { TEMPER_CHECKPOINT_DIR: dir, TEMPER_DATA_ROOTS: data } });
    client = new LearnerClient(stack.address('learner'), stack.clientAuth);
  });
  afterAll(async () => {
    client?.close();
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bad spec with INVALID_ARGUMENT naming each problem', async () => {
    const bad = spec('bad').replace('group_size: 2', 'group_size: 1').replace('steps: 2', 'steps: two');
    await expect(client.createRun({ spec: { $case: 'specYaml', value: bad } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('stages[0].grpo.steps: expected an integer >= 0, got "two"'),
    });
    await expect(client.createRun({ spec: { $case: 'specYaml', value: 'name: x\nstages:\n  - { name: a, sft: {} }\n  - { name: a, grpo: {} }\n' } })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('stages[1].name: "a" is used by an earlier stage'),
    });
  });

  it('refuses every file outside the data roots with INVALID_ARGUMENT naming the spec field', async () => {
    const task = (t: string) => spec('files').replace('task: { uri: "builtin:arithmetic" }', `task: ${t}`);
    const refused = async (yaml: string, field: string, why: RegExp) => {
      const err = await client.createRun({ spec: { $case: 'specYaml', value: yaml } }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      const line = err!.details.split('\n').find((l) => l.trim().startsWith(`${field}:`));
      expect(line).toMatch(why);
      // The learner says nothing of what the file holds.
      expect(err!.details).not.toContain('TOPSECRET');
    };
    const outside = /is outside the data roots/;
    await refused(task('{ uri: "../secret/prompts.jsonl" }'), 'stages[0].grpo.task.uri', outside);
    await refused(task(`{ uri: "${path.join(dir, 'secret', 'prompts.jsonl')}" }`), 'stages[0].grpo.task.uri', outside);
    await refused(task('{ uri: "/etc/passwd" }'), 'stages[0].grpo.task.uri', outside);
    await refused(task('{ uri: "link.jsonl" }'), 'stages[0].grpo.task.uri', outside);
    await refused(task('{ uri: "prompts.jsonl\\0.txt" }'), 'stages[0].grpo.task.uri', /contains a NUL byte/);
    await refused(task('{ uri: "missing.jsonl" }'), 'stages[0].grpo.task.uri', /does not exist/);
    await refused(task('{ dataset: { path: "../secret" } }'), 'stages[0].grpo.task.dataset.path', outside);
    await refused(task('{ dataset: { path: "leaky" } }'), 'stages[0].grpo.task.dataset.path (its file test.jsonl)', outside);
    await refused(spec('files').replace('tokenizer: bytes', `tokenizer: ${path.join(dir, 'secret')}`), 'model.tokenizer', outside);
    await refused(
      spec('files').replace('stages:', `eval: { task: { uri: "../secret/prompts.jsonl" } }\nstages:`),
      'eval.task.uri',
      outside,
    );
  });

  it('accepts files inside the data roots, relative or absolute', async () => {
    for (const [i, t] of ['{ uri: "prompts.jsonl" }', `{ uri: "${path.join(data, 'prompts.jsonl')}" }`, '{ dataset: { path: "gsm8k", preset: gsm8k } }'].entries()) {
      const yaml = spec('files').replace('task: { uri: "builtin:arithmetic" }', `task: ${t}`);
      const runId = `files-${process.pid}-${i}`;
      const { run } = await client.createRun({ spec: { $case: 'specYaml', value: yaml }, runId });
      expect(run!.runId).toBe(runId);
      await client.cancelRun(runId);
    }
  });

  it('creates, lists, follows and cancels a run; the same run id is created once', async () => {
    const runId = `api-${process.pid}`;
    const { run } = await client.createRun({ spec: { $case: 'specYaml', value: spec('api') }, runId });
    expect(run!.runId).toBe(runId);
    const again = await client.createRun({ spec: { $case: 'specYaml', value: spec('api') }, runId });
    expect(again.run!.createdAt).toEqual(run!.createdAt);
    expect((await client.listRuns()).runs.map((r) => r.runId)).toContain(runId);

    const states: RunState[] = [];
    const following = (async () => {
      for await (const e of client.watch(runId)) if (e.event?.$case === 'status') states.push(e.event.value.state);
    })();
    const { run: cancelled } = await client.cancelRun(runId);
    expect(cancelled!.state).toBe(RunState.RUN_STATE_CANCELLED);
    await following;
    expect(states[0]).toBe(RunState.RUN_STATE_PENDING);
    expect(states[states.length - 1]).toBe(RunState.RUN_STATE_CANCELLED);
    expect((await client.listRuns([RunState.RUN_STATE_CANCELLED])).runs.map((r) => r.runId)).toContain(runId);
  });

  it('reports an unknown run as NOT_FOUND', async () => {
    await expect(client.cancelRun('no-such-run')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});
