// Multi-turn GRPO across the services, each its own process on real NATS and gRPC: the learner
// asks for conversations with an environment, the generator runs them, the scorer reads the
// environment's reward parts, and the learner trains on the model's own tokens only. A user's
// environment module runs in the generator's sandbox: one that reaches for the host's files
// ends each of its conversations with the reason and the run goes on. A spec whose
// environment is wrong is refused when it is submitted, with the field named.
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { LocalStack, startLocalStack } from '../apps/cli/src/local-stack';

const spec = (environment: string) => `
name: multiturn
seed: 11
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true }
reward:
  components:
    - { name: environment, weight: 1, options: { part: solved }, report_as: accuracy }
stages:
  - name: rl
    grpo:
      steps: 2
      prompts_per_step: 2
      group_size: 3
      task: { uri: "builtin:countdown", fields: { difficulty: "1" } }
      sampling: { temperature: 1.0, max_new_tokens: 8 }
      optimizer: { lr: 0.003 }
      environment: ${environment}
`;

describe('multi-turn GRPO across services', () => {
  let stack: LocalStack;
  let learner: LearnerClient;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-multiturn-'));
  beforeAll(async () => {
    stack = await startLocalStack({
      logs: { dir: path.join(dir, 'logs') },
      env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_ENGINE_THREADS: '1', TEMPER_ROLLOUT_TIMEOUT_S: '120', TEMPER_DATA_ROOTS: dir },
    });
    learner = new LearnerClient(stack.address('learner'), stack.clientAuth);
  });
  afterAll(async () => {
    learner?.close();
    await stack?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trains on conversations: turns, tool calls and reward parts reported, observation tokens never trained', async () => {
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('{ name: guess_number, max_turns: 3, max_tokens: 150, options: { low: 1, high: 9 } }') } });
    const steps: Record<string, number>[] = [];
    let final = RunState.RUN_STATE_UNSPECIFIED;
    let error = '';
    for await (const e of learner.watch(run!.runId)) {
      if (e.event?.$case === 'status') [final, error] = [e.event.value.state, e.event.value.error];
      if (e.event?.$case === 'metrics') steps.push(e.event.value.values);
    }
    expect(error).toBe('');
    expect(final).toBe(RunState.RUN_STATE_SUCCEEDED);
    expect(steps).toHaveLength(2);
    for (const v of steps) {
      // An untrained model rarely guesses right: most conversations run to max_turns, none past it.
      expect(v['multiturn/turns']).toBeGreaterThan(1);
      expect(v['multiturn/turns']).toBeLessThanOrEqual(3);
      expect(v['multiturn/environment_errors']).toBe(0);
      expect(v['reward/environment']).toBeCloseTo(v.accuracy, 12);
      // The learner trained the model's tokens and nothing else: 6 conversations' own tokens, fewer than all they hold.
      expect(v.trained_tokens).toBeCloseTo(6 * v['multiturn/model_tokens'], 6);
      expect(v.trained_tokens).toBeLessThan(6 * v.response_length);
    }
  }, 180000);

  it("runs a user's module in the sandbox: a step that reaches for the host's files ends its conversation, the run goes on", async () => {
    // Answers the first turn, then tries to read a file on the second.
    fs.writeFileSync(
      path.join(dir, 'nosy.js'),
      `let turns = 0;
function reset(task) { return [{ role: 'user', content: 'Say something. ' + task.prompt }]; }
function step(turn) {
  turns++;
  if (turns === 2) return { observations: [{ role: 'user', content: require('fs').readFileSync('/etc/passwd', 'utf8') }], done: false };
  return { observations: [{ role: 'user', content: 'and again' }], rewards: { solved: turn.text.length > 0 ? 1 : 0 }, done: false };
}`,
    );
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('{ name: nosy.js, max_turns: 4, max_tokens: 120 }').replace('steps: 2', 'steps: 1') } });
    const steps: Record<string, number>[] = [];
    let final = RunState.RUN_STATE_UNSPECIFIED;
    for await (const e of learner.watch(run!.runId)) {
      if (e.event?.$case === 'status') final = e.event.value.state;
      if (e.event?.$case === 'metrics') steps.push(e.event.value.values);
    }
    expect(final).toBe(RunState.RUN_STATE_SUCCEEDED);
    // Every conversation ended at its second step, with the reason in the generator's rollouts.
    expect(steps[0]['multiturn/turns']).toBe(2);
    expect(steps[0]['multiturn/environment_errors']).toBe(6);
    expect(steps[0]['reward/environment']).toBeGreaterThanOrEqual(0);
  }, 180000);

  it('refuses a module outside the data roots, and an environment spec it cannot run, naming the field', async () => {
    await expect(learner.createRun({ spec: { $case: 'specYaml', value: spec('{ name: ../elsewhere.js }') } })).rejects.toThrow(/stages\[0\]\.grpo\.environment\.name: "\.\.\/elsewhere\.js" is outside the data roots/);
    const bad = spec('{ name: countdown, tools: [calculator, browser], options: { must_use_all: 3 }, tool_format: json }');
    await expect(learner.createRun({ spec: { $case: 'specYaml', value: bad } })).rejects.toThrow(
      /stages\[0\]\.grpo\.environment\.tool_format: expected one of hermes, compact, got "json"[\s\S]*stages\[0\]\.grpo\.environment\.tools\[1\]: unknown tool "browser"/,
    );
  });
});
