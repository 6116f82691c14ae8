// A reproducible run on a batch-invariant generator (TEMPER_GENERATOR_BATCH_INVARIANT=1): its
// groups share engine calls, each drawing from its own seed, and the run still ends with the
// same weights every time. (test/grpo-loop.test.ts covers the default generator, which samples a
// reproducible group alone, across a generator and a scorer killed midway.)
import { RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { follow, type LoopStack, startLoopStack } from './harness/loop-stack';

const spec = (name: string) => `
name: ${name}
seed: 7
reproducible: true
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true }
reward:
  components:
    - { name: accuracy, weight: 1, report_as: accuracy }
    - { name: format, weight: 0.5, options: { partialCredit: 0.5 } }
stages:
  - name: rl
    grpo:
      steps: 3
      prompts_per_step: 4
      group_size: 4
      save_every: 3
      max_policy_lag: 0
      task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }
      sampling: { temperature: 1.0, max_new_tokens: 16 }
      optimizer: { lr: 0.003 }
`;

describe('reproducible runs on a batch-invariant generator', () => {
  let loop: LoopStack;
  beforeAll(async () => {
    loop = await startLoopStack(fs.mkdtempSync(path.join(os.tmpdir(), 'temper-repro-batched-')), {}, { generator: { TEMPER_GENERATOR_BATCH_INVARIANT: '1' } });
  }, 180_000);
  afterAll(() => loop?.stop());

  /** Runs the spec to its end: every step's figures and the final weights' sha256. */
  async function run(name: string): Promise<{ runId: string; figures: number[][]; weights: string }> {
    const { run } = await loop.learner.createRun({ spec: { $case: 'specYaml', value: spec(name) } });
    const runId = run!.runId;
    const followed = await follow(loop.learner, runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    const figures = followed.steps.map(({ values: v }) => [v['reward/total'], v.response_length, v.loss, v.grad_norm]);
    const { checkpoints } = await loop.store.list({ runId });
    const weights = checkpoints.find((c) => c.step === 3)!.files.find((f) => f.path === 'model.safetensors')!.sha256;
    return { runId, figures, weights };
  }

  it('batches reproducible groups together and still ends with byte-identical weights', async () => {
    const a = await run('batched-a');
    const b = await run('batched-b');
    expect(b.figures).toEqual(a.figures);
    expect(b.weights).toBe(a.weights);
    // The groups shared engine calls: some generator.generate span says its batch held several.
    const runs = new Set([a.runId, b.runId]);
    const ofRuns = (got: { name: string; attributes: Record<string, unknown> }[]) =>
      got.filter((s) => s.name === 'generator.generate' && runs.has(String(s.attributes['temper.run_id'])));
    const spans = ofRuns(await loop.receiver.waitFor((got) => ofRuns(got).length >= 2 * 3 * 4, 30_000));
    expect(Math.max(...spans.map((s) => Number(s.attributes['temper.batch_groups'])))).toBeGreaterThan(1);
  }, 300_000);
});
