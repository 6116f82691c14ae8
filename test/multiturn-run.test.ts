// Multi-turn GRPO across the services, each its own process on real NATS and gRPC: the learner
// asks for conversations with an environment, the generator runs them, the scorer reads the
// environment's reward parts, and the learner trains on the model's own tokens only. A spec
// whose environment is wrong is refused when it is submitted, with the field named.
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
      env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'), TEMPER_ENGINE_THREADS: '1', TEMPER_ROLLOUT_TIMEOUT_S: '120' },
    });
    learner = new LearnerClient(stack.address('learner'));
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

  it('refuses an environment spec it cannot run, naming the field', async () => {
    const bad = spec('{ name: countdown, tools: [calculator, browser], options: { must_use_all: 3 }, tool_format: json }');
    await expect(learner.createRun({ spec: { $case: 'specYaml', value: bad } })).rejects.toThrow(
      /stages\[0\]\.grpo\.environment\.tool_format: expected one of hermes, compact, got "json"[\s\S]*stages\[0\]\.grpo\.environment\.tools\[1\]: unknown tool "browser"/,
    );
  });
});
