// The recipe end to end through the command line, as `npm start` runs it: `temper run
// <spec> --json` starts its own local stack (nats-server and the four services as processes)
// and carries a tiny model through mid-training with two decay branches, evaluation, SFT,
// evaluation, GRPO with eval_every on each branch, and evaluation again. The last line of standard output is
// the summary, with one `eval` entry per evaluation.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@temper/bus';

const run = promisify(execFile);
const cli = path.join(__dirname, '..', 'apps', 'cli', 'dist', 'main.js');

const spec = `
name: tiny-recipe
seed: 5
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true }
reward:
  components:
    - { name: countdown, weight: 1, options: { partialCredit: 0.3 }, report_as: accuracy }
    - { name: format, weight: 0.5, options: { partialCredit: 0.5 }, report_as: format }
eval:
  task: { uri: "builtin:countdown", fields: { difficulty: "1" } }
  num_prompts: 8
  pass_k: 2
  sampling: { max_new_tokens: 16 }
stages:
  - name: midtrain
    midtrain:
      seq_len: 64
      batch_size: 4
      stable_tokens: 1024
      optimizer: { lr: 0.005 }
      mixture: { sources: [ { name: qa, uri: "builtin:qa-short-cot", weight: 1, fields: { tasks: "countdown", difficulty: "1" } } ] }
      branches:
        - { name: short, tokens: 512 }
        - { name: long, tokens: 512, mixture: { sources: [ { name: qa, uri: "builtin:qa-long-cot", weight: 1, fields: { tasks: "countdown", difficulty: "1" } } ] } }
  - name: eval-midtrain
    eval: {}
  - name: sft
    sft:
      data: { sources: [ { name: countdown, uri: "builtin:countdown", weight: 1, fields: { difficulty: "1" } } ] }
      adapter: { kind: dora, rank: 2, use_rslora: true, merge_on_export: true }
      num_examples: 8
      batch_size: 4
  - name: eval-sft
    eval: {}
  - name: grpo
    grpo:
      task: { uri: "builtin:countdown", fields: { difficulty: "1" } }
      steps: 4
      eval_every: 2
      prompts_per_step: 2
      group_size: 4
      sampling: { max_new_tokens: 16 }
      optimizer: { lr: 0.001 }
  - name: eval-grpo
    eval: {}
`;

interface EvalEntry {
  stage: string;
  branch: string;
  step: number;
  accuracy: number;
  format_rate: number;
}

describe('temper run: the recipe end to end', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-recipe-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every stage on both branches and prints the summary, evaluations included, as the last line', async () => {
    fs.writeFileSync(path.join(dir, 'recipe.yaml'), spec);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Nothing answers here, so the command starts its own stack (with its own nats-server).
      TEMPER_LEARNER_ADDR: `127.0.0.1:${await freePort()}`,
      TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints'),
      TEMPER_ENGINE_THREADS: '1',
    };
    delete env.NATS_URL;
    const { stdout } = await run(process.execPath, [cli, 'run', 'recipe.yaml', '--json', '--report', 'report.html'], { cwd: dir, env, maxBuffer: 64 << 20 });
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]) as { state: string; eval: EvalEntry[] };
    expect(summary.state).toBe('succeeded');

    const seen = summary.eval.map((e) => `${e.stage} ${e.branch} ${e.step}`).sort();
    // Each branch's decay checkpoint (4 stable + 2 decay steps), SFT after its 2 steps, GRPO at
    // eval_every 2 (step 2) and at its last step 4 by the eval stage after it.
    expect(seen).toEqual(['grpo long 2', 'grpo long 4', 'grpo short 2', 'grpo short 4', 'midtrain long 6', 'midtrain short 6', 'sft long 2', 'sft short 2']);
    for (const e of summary.eval) {
      for (const key of ['accuracy', 'format_rate'] as const) {
        expect(e[key]).toBeGreaterThanOrEqual(0);
        expect(e[key]).toBeLessThanOrEqual(1);
      }
    }
    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(report).toContain('eval grpo · short');
  }, 240000);
});
