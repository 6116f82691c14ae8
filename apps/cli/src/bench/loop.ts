// npm run bench:loop -- [--json] [--steps N] [--multiturn] [--reproducible]: a fixed small GRPO
// run on a local stack, where each step's time goes (generate, score, learn, sync: publishing
// weights), and the services' own overhead: the distributed step's excess over the same steps
// done in one process. --multiturn runs the same shape again with multi-turn rollouts
// (guess_number, up to 3 turns) and --reproducible with `reproducible: true`, on the same stack
// right after, and report what a step costs then, side by side with the first run.
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

const multiTurnEnvironment = `
      environment: { name: guess_number, options: { low: 1, high: 100 }, max_turns: 3, max_tokens: ${3 * shape.maxNewTokens + 64} }`;

const spec = (steps: number, environment = '') => `
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
      optimizer: { lr: ${shape.lr} }${environment}
`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const steps = Number(args[args.indexOf('--steps') + 1]) || shape.steps;
  const warmupSteps = Math.min(shape.warmupSteps, steps - 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-bench-loop-'));
  const stack = await startLocalStack({ logs: { dir: path.join(dir, 'logs') }, env: { TEMPER_CHECKPOINT_DIR: path.join(dir, 'checkpoints') } });
  const client = new LearnerClient(stack.address('learner'), stack.clientAuth);
  // The per-step metrics of one run of `yaml`; the first steps pay for loading models, and the
  // next few for code still being compiled (each service's message path runs a few dozen times
  // a step): they are left out.
  const measure = async (yaml: string) => {
    const measured = (await distributedRun(client, yaml, json)).slice(warmupSteps);
    return { measured, avg: (k: string) => measured.reduce((a, v) => a + (v[k] ?? 0), 0) / Math.max(1, measured.length) };
  };
  try {
    const { measured, avg } = await measure(spec(steps));
    const step = avg('time/step_s');
    // The same spec, bit-reproducible: each group sampled alone, seeded by (seed, step, group, sample).
    let reproducible: { step_s: number; generate_s: number; step_ratio: number } | undefined;
    if (args.includes('--reproducible')) {
      if (!json) process.stderr.write('the same run with reproducible: true...\n');
      const again = await measure(`${spec(steps)}reproducible: true\n`);
      reproducible = { step_s: again.avg('time/step_s'), generate_s: again.avg('time/generate_s'), step_ratio: again.avg('time/step_s') / step };
    }
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
      ...(reproducible ? { reproducible } : {}),
      cpus: os.cpus().length,
      // Other work on the machine skews every figure above: the 1-minute load average at the end.
      load_average: os.loadavg()[0],
      multiturn: args.includes('--multiturn') ? await multiTurnCost() : undefined,
    };
    process.stdout.write((json ? JSON.stringify(result) : JSON.stringify(result, null, 2)) + '\n');

    // The same shape with conversations: each sample up to 3 turns of max_new_tokens, the
    // environment's replies between them. Run right after the single-turn one on the same
    // stack, so the ratios compare like with like on a machine whose load changes.
    async function multiTurnCost() {
      if (!json) process.stderr.write('the same shape with multi-turn rollouts...\n');
      const mt = await measure(spec(steps, multiTurnEnvironment));
      const rollouts = shape.promptsPerStep * shape.groupSize;
      const perToken = (s: number, tokens: number) => (tokens > 0 ? s / (tokens * rollouts) : 0);
      return {
        steps_measured: mt.measured.length,
        max_turns: 3,
        turns_per_rollout: mt.avg('multiturn/turns'),
        // Tokens in a rollout after its prompt (the model's and the replies), and the model's own.
        tokens_per_rollout: mt.avg('response_length'),
        model_tokens_per_rollout: mt.avg('multiturn/model_tokens'),
        step_s: mt.avg('time/step_s'),
        generate_s: mt.avg('time/generate_s'),
        score_s: mt.avg('time/score_s'),
        learn_s: mt.avg('time/learn_s'),
        sync_s: mt.avg('time/sync_s'),
        // Against the single-turn run above: a step, and sampling per token the model wrote.
        step_ratio: step > 0 ? mt.avg('time/step_s') / step : 0,
        generate_s_per_model_token: perToken(mt.avg('time/generate_s'), mt.avg('multiturn/model_tokens')),
        single_turn_generate_s_per_token: perToken(parts.generate_s, avg('response_length')),
      };
    }
  } finally {
    client.close();
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One run of `specYaml` on the stack, followed to its end: each step's metrics. */
async function distributedRun(client: LearnerClient, specYaml: string, json: boolean): Promise<Record<string, number>[]> {
  const { run } = await client.createRun({ spec: { $case: 'specYaml', value: specYaml } });
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
  return history;
}

main().catch((err: Error) => {
  process.stderr.write(`bench:loop: ${err.message}\n`);
  process.exit(1);
});
