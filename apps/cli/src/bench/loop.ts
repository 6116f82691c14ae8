// npm run bench:loop -- [--json] [--steps N]: a fixed small GRPO run on a local stack, where
// each step's time goes (generate, score, learn, sync: publishing weights), and the services'
// own overhead: the distributed step's excess over the same steps done in one process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../learner-client';
import { startLocalStack } from '../local-stack';
import { BaselineShape, inProcessStepSeconds } from './loop-baseline';

// One shape for both runs: the distributed one (a run spec) and the in-process baseline.
const shape: BaselineShape = {
  config: { model_type: 'qwen2', hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, tie_word_embeddings: true },
  steps: 16,
  warmupSteps: 3,
  promptsPerStep: 8,
  groupSize: 8,
  maxNewTokens: 48,
  lr: 0.0003,
  difficulty: [1, 2],
};

const spec = (steps: number) => `
name: bench-loop
seed: 1
model:
  tokenizer: bytes
  config: ${JSON.stringify(shape.config)}
reward:
  components:
    - { name: accuracy, weight: 1, report_as: accuracy }
    - { name: format, weight: 0.5, options: { partialCredit: 0.5 }, report_as: format }
stages:
  - name: rl
    grpo:
      steps: ${steps}
      prompts_per_step: ${shape.promptsPerStep}
      group_size: ${shape.groupSize}
      save_every: ${steps}
      task: { uri: "builtin:arithmetic", fields: { difficulty: "${shape.difficulty.join(',')}" } }
      sampling: { temperature: 1.0, max_new_tokens: ${shape.maxNewTokens} }
      optimizer: { lr: ${shape.lr} }
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const steps = Number(args[args.indexOf('--steps') + 1]) || shape.steps;
  const warmupSteps = Math.min(shape.warmupSteps, steps - 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-loop-'));
  const stack = await startLocalStack({ logs: { dir: path.join(dir, 'logs') }, env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints') } });
  const client = new LearnerClient(stack.address('learner'), stack.clientAuth);
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
    // The first step pays for loading models, and the next few for code still being compiled
    // (each service's message path runs a few dozen times a step): leave them out.
    const measured = history.slice(warmupSteps);
    const avg = (k: string) => measured.reduce((a, v) => a + (v[k] ?? 0), 0) / Math.max(1, measured.length);
    const step = avg('time/step_s');
    const parts = { generate_s: avg('time/generate_s'), score_s: avg('time/score_s'), learn_s: avg('time/learn_s'), sync_s: avg('time/sync_s') };
    if (!json) process.stderr.write('the same steps in one process, without services...\n');
    const baseline = await inProcessStepSeconds({ ...shape, steps, warmupSteps });
    // The work itself: the engine time the generator and the learner measured on these very
    // rollouts, and the scoring compute of the baseline (the scorer's own figure may include
    // waiting for a scoring thread). Weight sync is its own part (sync_s). What is left is the
    // services' overhead: messaging, serialization, waiting (a generator's wait for a policy
    // version it has not loaded yet included).
    const work = parts.generate_s + parts.learn_s + baseline.score_s;
    const overhead = Math.max(0, step - parts.sync_s - work);
    const result = {
      bench: 'loop',
      steps_measured: measured.length,
      prompts_per_step: shape.promptsPerStep,
      group_size: shape.groupSize,
      max_new_tokens: shape.maxNewTokens,
      // The distributed step and where its time went (generate and score: engine and scoring
      // time of the step's groups, as the generators and scorers report it).
      step_s: step,
      ...parts,
      // The same work in one process: sample, score, train, save.
      baseline: baseline,
      // What the services add over the baseline, weight sync aside: messaging, serialization, waiting.
      overhead_s: overhead,
      overhead_fraction: step > 0 ? overhead / step : 0,
      // Publishing the weights: streamed to the generators (the checkpoint that commits them
      // uploads in the background, overlapping the next step).
      sync_fraction: step > 0 ? parts.sync_s / step : 0,
      cpus: os.cpus().length,
      // Other work on the machine skews every figure above: the 1-minute load average at the end.
      load_average: os.loadavg()[0],
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
