// npm run bench:loop -- [--json] [--steps N]: a fixed small GRPO run on a local stack, and
// where each step's time goes: generate, score, learn, sync (publishing weights), and the
// rest, the services' own overhead (messaging, serialization, waiting).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../learner-client';
import { startLocalStack } from '../local-stack';

const spec = (steps: number) => `
name: bench-loop
seed: 1
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, tie_word_embeddings: true }
stages:
  - name: rl
    grpo:
      steps: ${steps}
      prompts_per_step: 8
      group_size: 8
      save_every: ${steps}
      task: { uri: "builtin:arithmetic", fields: { difficulty: "1,2" } }
      sampling: { temperature: 1.0, max_new_tokens: 48 }
      optimizer: { lr: 0.0003 }
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const steps = Number(args[args.indexOf('--steps') + 1]) || 6;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-loop-'));
  const stack = await startLocalStack({ logs: { dir: path.join(dir, 'logs') }, env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints') } });
  const client = new LearnerClient(stack.address('learner'));
  try {
    const { run } = await client.createRun({ spec: { $case: 'specYaml', value: spec(steps) } });
    const history: Record<string, number>[] = [];
    let error = '';
    for await (const e of client.watch(run!.runId)) {
      if (e.event?.$case === 'metrics') {
        history.push(e.event.value.values);
        if (!json) process.stderr.write(`step ${e.event.value.step}: ${e.event.value.values['time/step_s'].toFixed(2)} s\n`);
      }
      if (e.event?.$case === 'status' && e.event.value.error) error = e.event.value.error;
    }
    if (error) throw new Error(`the bench run failed: ${error}`);
    // The first step pays for loading models and compiling nothing twice: leave it out.
    const measured = history.slice(1);
    const avg = (k: string) => measured.reduce((a, v) => a + (v[k] ?? 0), 0) / Math.max(1, measured.length);
    const step = avg('time/step_s');
    const parts = { generate_s: avg('time/generate_s'), score_s: avg('time/score_s'), learn_s: avg('time/learn_s'), sync_s: avg('time/sync_s') };
    const overhead = Math.max(0, step - parts.generate_s - parts.score_s - parts.learn_s - parts.sync_s);
    const result = {
      bench: 'loop',
      steps_measured: measured.length,
      prompts_per_step: 8,
      group_size: 8,
      step_s: step,
      ...parts,
      overhead_s: overhead,
      overhead_fraction: step > 0 ? overhead / step : 0,
      cpus: os.cpus().length,
    };
    process.stdout.write((json ? JSON.stringify(result) : JSON.stringify(result, null, 2)) + '\n');
  } finally {
    client.close();
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench:loop: ${err.message}\n`);
  process.exit(1);
});
