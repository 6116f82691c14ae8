// The distributed GRPO loop end to end: every service its own process, real NATS and gRPC,
// a tiny model on a built-in task. Then the same run surviving a killed learner and a killed
// generator.
import { connectBus, streams } from '@temper/bus';
import { CheckpointClient } from '@temper/checkpoint-client';
import { CheckpointManifest, RunState } from '@temper/proto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LearnerClient } from '../apps/cli/src/learner-client';
import { exportCheckpoint } from '../apps/cli/src/models/export';
import type { LocalStack } from '../apps/cli/src/local-stack';
import { follow, type Followed, type LoopStack, startLoopStack } from './harness/loop-stack';
import type { OtlpReceiver } from './harness/otlp-receiver';
import { generatorServingInfo } from './harness/generator-client';

const rewards = `
    - { name: accuracy, weight: 1, report_as: accuracy }
    - { name: digits, weight: 1 } # test/harness/reward-plugin.js`;

const spec = (name: string, steps: number, saveEvery: number, maxNewTokens = 12, maxPolicyLag = 0, components = rewards, grpoOptions = '') => `
name: ${name}
seed: 7
model:
  tokenizer: bytes
  config: { model_type: qwen2, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256, tie_word_embeddings: true }
reward:
  components:${components}
stages:
  - name: rl
    grpo:
      steps: ${steps}
      prompts_per_step: 2
      group_size: 4
      save_every: ${saveEvery}
      max_policy_lag: ${maxPolicyLag}
      task: { uri: "builtin:arithmetic", fields: { difficulty: "1" } }
      sampling: { temperature: 1.0, max_new_tokens: ${maxNewTokens} }
      optimizer: { lr: 0.003 }${grpoOptions}
`;

/** The checkpoint's ancestry, itself first. */
async function chain(store: CheckpointClient, id: string): Promise<CheckpointManifest[]> {
  const { ancestors } = await store.lineage(id);
  const self = (await store.list({})).checkpoints.find((c) => c.id === id)!;
  return [self, ...ancestors];
}

describe('the GRPO loop across services', () => {
  let loop: LoopStack;
  let stack: LocalStack;
  let receiver: OtlpReceiver;
  let learner: LearnerClient;
  let store: CheckpointClient;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-loop-'));
  beforeAll(async () => {
    loop = await startLoopStack(dir, {
      TEMPER_GENERATOR_ACK_WAIT_S: '5',
      TEMPER_ROLLOUT_TIMEOUT_S: '120',
      TEMPER_REWARD_PLUGINS: path.join(__dirname, 'harness', 'reward-plugin.js'),
    });
    ({ stack, receiver, learner, store } = loop);
  });
  afterAll(() => loop?.stop());

  it('samples, scores, learns and publishes new weights, in one trace per step', async () => {
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('loop', 3, 1) } });
    const runId = run!.runId;
    const followed = await follow(learner, runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    expect(followed.steps.map((s) => s.step)).toEqual([1, 2, 3]);
    for (const s of followed.steps) {
      expect(s.values.groups).toBe(2);
      expect(s.values['reward/total']).toEqual(expect.any(Number));
      expect(s.values.response_length).toBeGreaterThan(0);
      // The spec reports its accuracy component as accuracy, and no component as format.
      expect(s.values.accuracy).toBeCloseTo(s.values['reward/accuracy'], 12);
      expect(s.values.format_rate).toBeUndefined();
    }

    // Checkpoints landed, one per step after the initial policy, each the child of the last.
    const { checkpoints } = await store.list({ runId });
    const last = checkpoints.find((c) => c.step === 3)!;
    const lineage = await chain(store, last.id);
    expect(lineage.map((c) => c.step)).toEqual([3, 2, 1, 0]);
    // The weights changed.
    const weights = (c: CheckpointManifest) => c.files.find((f) => f.path === 'model.safetensors')!.sha256;
    expect(weights(lineage[0])).not.toBe(weights(lineage[3]));

    // The generator moved on to the policies the learner published.
    const serving = await generatorServingInfo(stack.address('generator'), stack.clientAuth.token);
    expect(serving.policyVersion).toBeGreaterThanOrEqual(3);

    // One step's trace holds spans from all four services.
    const spans = await receiver.waitFor((all) => {
      const steps = all.filter((s) => s.service === 'learner' && s.name === 'grpo.step');
      return steps.some((st) => new Set(all.filter((s) => s.traceId === st.traceId).map((s) => s.service)).size >= 4);
    }, 30000);
    const step = spans.find((s) => s.service === 'learner' && s.name === 'grpo.step' && new Set(spans.filter((x) => x.traceId === s.traceId).map((x) => x.service)).size >= 4)!;
    expect(new Set(spans.filter((s) => s.traceId === step.traceId).map((s) => s.service))).toEqual(new Set(['learner', 'generator', 'scorer', 'checkpoint-store']));
    // A step's requests go out while the step before it trains, yet its sampling and scoring
    // are in its own trace.
    const ofRun = (got: typeof spans, name: string) => got.filter((s) => s.name === name && String(s.attributes['temper.run_id']) === runId).length;
    // Spans come in batches from each service: wait for every step's, and for all the work's.
    const all = await receiver.waitFor((got) => ofRun(got, 'grpo.step') >= 3 && ofRun(got, 'generator.generate') >= 6 && ofRun(got, 'scorer.score_group') >= 6, 30000);
    const stepOfTrace = new Map(all.filter((s) => s.name === 'grpo.step' && String(s.attributes['temper.run_id']) === runId).map((s) => [s.traceId, String(s.attributes['temper.step'])]));
    const work = all.filter((s) => ['generator.generate', 'scorer.score_group'].includes(s.name) && String(s.attributes['temper.run_id']) === runId);
    expect(new Set(work.map((s) => String(s.attributes['temper.step'])))).toEqual(new Set(['1', '2', '3']));
    for (const s of work) expect(stepOfTrace.get(s.traceId)).toBe(String(s.attributes['temper.step']));
  });

  it('runs asynchronously with a bounded policy lag: sampling for the next step overlaps training', async () => {
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('async', 4, 4, 24, 1) } });
    const followed = await follow(learner, run!.runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    expect(followed.steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    for (const s of followed.steps) {
      expect(s.values.groups).toBe(2);
      expect(s.values.policy_lag).toBeLessThanOrEqual(1);
      expect(s.values.stale_groups).toEqual(expect.any(Number));
    }
    // Groups for step 2 were asked for while step 1 trained, so some were sampled a version back.
    expect(Math.max(...followed.steps.slice(1).map((s) => s.values.policy_lag))).toBeGreaterThan(0);
  });

  it('measures the rollout/training mismatch and corrects for it with truncated importance sampling and entropy masking', async () => {
    // token_mask under a tiny cap masks every token: no policy gradient (and no KL, no weight
    // decay), so the step's weights are byte for byte the starting ones.
    const masked = await learner.createRun({ spec: { $case: 'specYaml', value: spec('tis-mask', 1, 1, 12, 0, rewards, '\n      importance_sampling_mode: token_mask\n      importance_sampling_cap: 1.0e-6') } });
    const followedMasked = await follow(learner, masked.run!.runId);
    expect(followedMasked.error).toBe('');
    const [only] = followedMasked.steps;
    expect(only.values).toMatchObject({ 'mismatch/is_weight_mean': 0, 'mismatch/is_capped_fraction': 1, grad_norm: 0 });
    const { checkpoints } = await store.list({ runId: masked.run!.runId });
    const weights = (step: number) => checkpoints.find((c) => c.step === step)!.files.find((f) => f.path === 'model.safetensors')!.sha256;
    expect(weights(1)).toBe(weights(0));

    // Sequence-level truncation at a cap no ratio reaches, and the top half of tokens by entropy.
    const options = '\n      importance_sampling_mode: sequence_truncate\n      importance_sampling_cap: 100\n      top_entropy_quantile: 0.5';
    const run = await learner.createRun({ spec: { $case: 'specYaml', value: spec('tis-entropy', 2, 2, 12, 0, rewards, options) } });
    const followed = await follow(learner, run.run!.runId);
    expect(followed.error).toBe('');
    expect(followed.steps).toHaveLength(2);
    for (const { values } of followed.steps) {
      // The generator's log-probs and the learner's, same weights on the CPU: float rounding.
      expect(values['mismatch/logprob_diff_max']).toBeLessThan(1e-5);
      expect(values['mismatch/logprob_diff_mean']).toBeLessThanOrEqual(values['mismatch/logprob_diff_max']);
      expect(Math.abs(values['mismatch/kl'])).toBeLessThan(1e-9);
      expect(values['mismatch/is_capped_fraction']).toBe(0);
      expect(values['mismatch/is_weight_mean']).toBeCloseTo(1, 4);
      // One micro-batch of 8 completions: the median splits its tokens, ties and an odd count keep one more.
      expect(values['entropy_mask/kept_fraction']).toBeGreaterThanOrEqual(0.5);
      expect(values['entropy_mask/kept_fraction']).toBeLessThan(0.6);
      // A step trains unless every group is flat (equal rewards: zero advantages, and no KL or
      // weight decay here). With the digits reward on 12 sampled bytes a group of 4 is flat about
      // one time in seven, so a step with both groups flat (~2%) is the samples' doing, not a bug;
      // the samples change when rows are batched differently, so it came and went between runs.
      if (values.degenerate_groups < values.groups && !(values.grad_norm > 0)) {
        throw new Error(`a step with rewards to learn from trained with a zero gradient: ${JSON.stringify(values)}`);
      }
    }
  });

  it('trains LoRA adapters on a frozen base: the base is the KL reference, only the adapters stream and are stored', async () => {
    const options = '\n      kl_beta: 0.05\n      adapter: { kind: lora, rank: 4, alpha: 8, target_modules: [q_proj, v_proj, up_proj] }';
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('lora', 3, 3, 12, 0, rewards, options) } });
    const runId = run!.runId;
    const followed = await follow(learner, runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    const [first, ...later] = followed.steps.map((s) => s.values);
    // Step 1 samples and trains the base itself (B = 0): its KL to the reference, the base, is exactly 0.
    expect(first.kl).toBe(0);
    for (const v of later) expect(v.kl).toBeGreaterThan(0);
    for (const v of [first, ...later]) {
      expect(v.weights_streamed).toBe(1);
      // The generator samples with the streamed adapters on the base: its log-probs are the learner's.
      expect(v['mismatch/logprob_diff_max']).toBeLessThan(1e-5);
    }

    // Step 0 holds the base and the adapters' start; every version after it the adapters alone, naming it.
    const { checkpoints } = await store.list({ runId });
    const at = (step: number) => checkpoints.find((c) => c.step === step)!;
    const file = (c: CheckpointManifest, name: string) => c.files.find((f) => f.path === name);
    expect(file(at(0), 'model.safetensors')).toBeDefined();
    expect(file(at(0), 'adapter/adapter_model.safetensors')).toBeDefined();
    for (const step of [1, 2, 3]) {
      const c = at(step);
      expect(c.labels.adapter_base).toBe(at(0).id);
      expect(file(c, 'model.safetensors')).toBeUndefined();
      expect(file(c, 'adapter/adapter_model.safetensors')!.size).toBeLessThan(file(at(0), 'model.safetensors')!.size / 5);
    }
    expect(file(at(3), 'temper-run-state.json')).toBeDefined();
    expect(file(at(3), 'adapter/adapter_model.safetensors')!.sha256).not.toBe(file(at(1), 'adapter/adapter_model.safetensors')!.sha256);

    // The generator took the adapters off the stream, not from the store.
    const lines = fs.readFileSync(path.join(dir, 'logs', 'generator.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const streamed = lines.filter((l) => l.msg === 'policy streamed ahead' && l.run === runId);
    expect(streamed.length).toBeGreaterThanOrEqual(2);
    for (const l of streamed) expect(l).toMatchObject({ kind: 'adapters', bytes: expect.any(Number) });
    // Their checkpoints, once committed, are known for what was streamed: nothing is pulled again.
    expect(lines.filter((l) => l.msg === 'streamed policy committed' && l.run === runId).length).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.msg === 'the checkpoint of a streamed version is not what was streamed; serving it from the store' && l.run === runId)).toEqual([]);

    // The last version exports as a whole model: its base with the adapters merged in.
    const out = path.join(dir, 'lora-export');
    const exported = await exportCheckpoint(at(3).id, out, { endpoint: stack.address('checkpoint-store'), auth: stack.clientAuth });
    expect(exported.files).toContain('model.safetensors');
  });

  it('trains LoRA adapters on a bf16 base, which is the KL reference too, tracking the fp32 base', async () => {
    const adapter = (precision: string) => `\n      kl_beta: 0.05\n      adapter: { kind: lora, rank: 4, alpha: 8, target_modules: [q_proj, v_proj, up_proj], base_precision: ${precision} }`;
    const runs = [];
    const baseFiles = [];
    for (const precision of ['fp32', 'bf16']) {
      const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec(`lora-${precision}`, 2, 2, 12, 0, rewards, adapter(precision)) } });
      runs.push(await follow(learner, run!.runId));
      const { checkpoints } = await store.list({ runId: run!.runId });
      baseFiles.push(checkpoints.find((c) => c.step === 0)!.files.find((f) => f.path === 'model.safetensors')!.sha256);
    }
    const [fp32, bf16] = runs;
    // Both bases come from seed 7; the bf16 run's step 0 stores its projections as it holds them, rounded.
    expect(baseFiles[1]).not.toBe(baseFiles[0]);
    expect(bf16.error).toBe('');
    expect(bf16.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    const [first, second] = bf16.steps.map((s) => s.values);
    // Step 1 trains the base itself (B = 0) and its reference is that same bf16 base: KL exactly 0.
    expect(first.kl).toBe(0);
    expect(second.kl).toBeGreaterThan(0);
    // The generator samples with fp32 products on the stored base (the bf16 values): the learner's
    // log-probs of the same tokens differ only by its bf16 products.
    for (const v of [first, second]) {
      expect(v['mismatch/logprob_diff_max']).toBeLessThan(0.05);
      expect(v['mismatch/logprob_diff_max']).toBeGreaterThan(fp32.steps[0].values['mismatch/logprob_diff_max']);
    }
    // The same seed and prompts: step 1's group rewards and loss are those of the fp32 run's,
    // within what the bf16 base changes in the sampled tokens' probabilities.
    expect(Math.abs(first.loss - fp32.steps[0].values.loss)).toBeLessThan(0.05);
  });

  it('holds a full-weight stage\'s KL reference in bf16 when asked, refusing it beside an adapter', async () => {
    const options = (precision: string) => `\n      kl_beta: 0.05\n      reference_precision: ${precision}`;
    const kls = [];
    for (const precision of ['fp32', 'bf16']) {
      const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec(`reference-${precision}`, 1, 1, 12, 0, rewards, options(precision)) } });
      const followed = await follow(learner, run!.runId);
      expect(followed.error).toBe('');
      expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
      kls.push(followed.steps[0].values.kl);
    }
    // Step 1's policy is the reference's own weights: KL exactly 0 in fp32, and in bf16 only what
    // the reference's bf16 products change.
    expect(kls[0]).toBe(0);
    expect(kls[1]).toBeGreaterThan(0);
    expect(kls[1]).toBeLessThan(1e-3);
    const refused = await learner.createRun({ spec: { $case: 'specYaml', value: spec('reference-lora', 1, 1, 12, 0, rewards, `${options('bf16')}\n      adapter: { kind: lora }`) } });
    const followed = await follow(learner, refused.run!.runId);
    expect(followed.error).toMatch(/grpo.reference_precision: with an adapter .* set grpo.adapter.base_precision instead/);
  });

  it('reproduces a run bit for bit with reproducible: true, with a generator and a scorer killed and restarted midway', async () => {
    const reproducible = (name: string) => `${spec(name, 4, 4, 24)}reproducible: true\n`;
    const weightsOf = async (runId: string) => {
      const { checkpoints } = await store.list({ runId });
      return checkpoints.find((c) => c.step === 4)!.files.find((f) => f.path === 'model.safetensors')!.sha256;
    };
    const first = await learner.createRun({ spec: { $case: 'specYaml', value: reproducible('repro-a') } });
    const a = await follow(learner, first.run!.runId);
    expect(a.error).toBe('');

    // The same spec again; once step 2 is reported (step 3's requests are out), the generator
    // and the scorer die and come back: step 3's groups are sampled and scored again elsewhere
    // (a group the dead scorer held comes back after its 60 s ack wait: hence the time limit).
    const second = await learner.createRun({ spec: { $case: 'specYaml', value: reproducible('repro-b') } });
    let restarted: Promise<unknown> | undefined;
    const b = await follow(learner, second.run!.runId, (step) => {
      if (step === 2) {
        restarted ??= (async () => {
          await Promise.all([stack.kill('generator'), stack.kill('scorer')]);
          await stack.start('generator');
          await stack.start('scorer');
        })();
      }
    });
    await restarted;
    expect(restarted).toBeDefined();
    expect(b.error).toBe('');
    expect(b.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    // Every step's rewards and loss are the same, and the final weights are byte-identical.
    const figures = (f: Followed) => f.steps.map((s) => [s.values['reward/total'], s.values.response_length, s.values.loss, s.values.grad_norm]);
    expect(figures(b)).toEqual(figures(a));
    expect(await weightsOf(second.run!.runId)).toBe(await weightsOf(first.run!.runId));
  }, 180_000);

  it('runs partial rollouts asynchronously: each token keeps the policy version that produced it', async () => {
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('partial', 5, 5, 48, 1, rewards, '\n      partial_rollout_tokens: 1') } });
    const followed = await follow(learner, run!.runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    for (const { values } of followed.steps) {
      expect(values.groups).toBe(2);
      expect(values.partial_completions).toEqual(expect.any(Number));
      // A token is never older than the rollout it belongs to: newer versions only ever finish one.
      expect(values.token_policy_lag).toBeLessThanOrEqual(values.policy_lag + 1e-12);
      if (values.partial_completions > 0) expect(values.token_policy_lag).toBeLessThan(values.policy_lag);
      expect(values.policy_lag).toBeLessThanOrEqual(1);
    }
  });

  it('says so when a step is left short of groups after its refills, counting each flat group once', async () => {
    // Every reward is the same: with dynamic sampling each group is dropped and asked for again.
    const flat = spec('short', 1, 1, 12, 0, '\n    - { name: constant, weight: 1 }', '\n      dynamic_sampling: true');
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: flat } });
    const followed = await follow(learner, run!.runId);
    expect(followed.error).toBe('');
    expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
    const [step] = followed.steps;
    // 2 groups asked for, then 3 rounds of 2 refills: 8 flat groups, none trained on.
    expect(step.values).toMatchObject({ groups: 0, short_groups: 2, degenerate_groups: 8, refill_rounds: 3 });
    expect(step.values.accuracy).toBeUndefined();
    const lines = fs.readFileSync(path.join(dir, 'logs', 'learner.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const said = lines.find((l) => l.msg === 'step trains on fewer groups than it asked for' && l.run_id === run!.runId);
    expect(said).toMatchObject({ level: 'warn', step: 1, asked: 2, groups: 0, missing: 2, degenerate: 8, refills: 3 });
  });

  /** Follows `runId` until `step` is reported, then kills the learner (the watch ends with it). */
  async function killLearnerAtStep(runId: string, step: number): Promise<void> {
    let killed: Promise<void> | undefined;
    await follow(learner, runId, (s) => {
      if (s === step) killed ??= stack.kill('learner');
    }).catch(() => undefined);
    await killed;
  }

  /** Starts the killed learner again and follows `runId` through a new client to its successful end. */
  async function followAfterRestart(runId: string): Promise<Followed> {
    await stack.start('learner');
    const fresh = new LearnerClient(stack.address('learner'), stack.clientAuth);
    try {
      const rest = await follow(fresh, runId);
      expect(rest.error).toBe('');
      expect(rest.final).toBe(RunState.RUN_STATE_SUCCEEDED);
      return rest;
    } finally {
      fresh.close();
    }
  }

  /** The run's newest checkpoint at `step` (a step redone after a resume has two). */
  async function newestAt(runId: string, step: number) {
    const { checkpoints } = await store.list({ runId });
    return checkpoints.filter((c) => c.step === step).sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0))[0];
  }

  it('resumes a run after the learner is killed, with no step lost or done twice', async () => {
    // Longer completions make a step last long enough for the kill to land inside the run.
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('resume', 4, 2, 48) } });
    const runId = run!.runId;
    // Kill the learner once step 3 has been reported. Checkpoints upload in the background, so
    // its last committed resumable checkpoint may be step 2's or (upload still running) step 0's.
    await killLearnerAtStep(runId, 3);
    const resumable = (await store.list({ runId })).checkpoints.filter((c) => c.files.some((f) => f.path === 'temper-run-state.json'));
    const resumeFrom = Math.max(...resumable.map((c) => c.step));
    expect([0, 2, 4]).toContain(resumeFrom); // 4: it finished before the kill landed
    const rest = await followAfterRestart(runId);
    // The final checkpoint's ancestry has every step exactly once.
    expect((await chain(store, (await newestAt(runId, 4)).id)).map((c) => c.step)).toEqual([4, 3, 2, 1, 0]);
    // The history shows the steps the killed learner reported (1 to 3, or 4 if it got that
    // far), then every step after the checkpoint the run resumed from, once.
    const history = rest.steps.map((s) => s.step);
    const redone = [1, 2, 3, 4].filter((s) => s > resumeFrom);
    const reported = history.slice(0, history.length - redone.length);
    expect(history.slice(reported.length)).toEqual(redone);
    expect([[1, 2, 3], [1, 2, 3, 4]]).toContainEqual(reported);
  });

  it('resumes a LoRA run after the learner is killed: adapters, their optimizer state and the base reference come back', async () => {
    const options = '\n      kl_beta: 0.05\n      adapter: { kind: lora, rank: 4, alpha: 8, target_modules: [q_proj, v_proj] }';
    const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('lora-resume', 4, 2, 48, 0, rewards, options) } });
    const runId = run!.runId;
    await killLearnerAtStep(runId, 3);
    const rest = await followAfterRestart(runId);
    // After the resume the generators serve the resumed adapters on the base: the learner's log-probs.
    for (const s of rest.steps) expect(s.values['mismatch/logprob_diff_max']).toBeLessThan(1e-5);
    const start = await newestAt(runId, 0);
    const last = await newestAt(runId, 4);
    expect(last.labels.adapter_base).toBe(start.id);
    expect((await chain(store, last.id)).map((c) => c.step)).toEqual([4, 3, 2, 1, 0]);
  });

  it('loses no prompt group when a generator is killed mid-batch', async () => {
    const bus = await connectBus(stack.natsUrl, 'loop-test');
    try {
      const { run } = await learner.createRun({ spec: { $case: 'specYaml', value: spec('gen-kill', 2, 2, 48) } });
      const done = follow(learner, run!.runId);
      // Wait until the generator holds the first step's requests unacknowledged, then kill it
      // and start another: the requests come back to the new one after the ack wait (5 s).
      for (let i = 0; ; i++) {
        const info = await bus.jsm.consumers.info(streams.rolloutRequests.name, 'generators').catch(() => undefined);
        if (info && info.num_ack_pending > 0) break;
        if (i > 600) throw new Error('the generator never took the requests');
        await new Promise((r) => setTimeout(r, 10));
      }
      const killedAt = Date.now();
      await stack.kill('generator');
      await stack.start('generator');
      const followed = await done;
      expect(followed.error).toBe('');
      expect(followed.final).toBe(RunState.RUN_STATE_SUCCEEDED);
      expect(followed.steps.map((s) => s.values.groups)).toEqual([2, 2]);
      expect(Date.now() - killedAt).toBeGreaterThan(4000); // the held requests waited out the ack timeout
    } finally {
      await bus.close();
    }
  });
});
