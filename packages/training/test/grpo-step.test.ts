// The GRPO step through the real engine: the gradient the engine accumulates from the
// surrogate's d loss / d log-probs matches finite differences of the surrogate itself, and
// steps move the policy the way the advantages say.
import { buildTrainingBatch, highEntropyMask, importanceWeights, logprobMismatch, policyLoss, ScoredPromptGroup, TrainingBatch } from '@temper/algorithms';
import { Model } from '@temper/native';
import { grpoStep, GrpoLossConfig, referenceLogprobs } from '@temper/training';

const config = {
  model_type: 'qwen2' as const,
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
};

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

// Groups of random completions whose rollout-time log-probs are the model's own, nudged, so
// ratios sit near 1 on both sides of it.
async function randomBatch(model: Model, seed: number): Promise<TrainingBatch> {
  const r = rng(seed);
  const tok = () => 1 + Math.floor(r() * 31);
  const groups: ScoredPromptGroup[] = [];
  for (let g = 0; g < 2; g++) {
    const promptIds = Array.from({ length: 3 + g }, tok);
    const completions = Array.from({ length: 3 }, (_, c) => {
      const tokenIds = Array.from({ length: 2 + c }, tok);
      return { tokenIds, logprobs: new Array(tokenIds.length).fill(0), finishReason: 'stop' as const };
    });
    groups.push({ promptIds, completions, rewards: [r(), r(), r() + 1] });
  }
  const batch = buildTrainingBatch(groups, { estimator: 'grpo', filterOverlong: false, padId: 0 });
  const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths });
  for (let j = 0; j < logprobs.length; j++) if (batch.mask[j]) batch.oldLogprobs[j] = logprobs[j] + (r() - 0.5) * 0.1;
  return batch;
}

const lossCfg: GrpoLossConfig = {
  epsLow: 0.2,
  epsHigh: 0.28,
  beta: 0.04,
  klEstimator: 'k3',
  level: 'token',
  aggregation: 'grpo',
  maxCompletionLength: 8,
  numIterations: 1,
  microBatchSize: 4,
};

async function surrogate(model: Model, batch: TrainingBatch, ref: Float32Array): Promise<number> {
  const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths });
  return policyLoss({
    ...lossCfg,
    n: batch.n,
    t: batch.seqLen - 1,
    logprobs,
    oldLogprobs: batch.oldLogprobs,
    refLogprobs: ref,
    mask: batch.mask,
    advantages: batch.advantages,
  }).loss;
}

// Adds `delta` to one float of one tensor inside exportWeights() bytes (F32 safetensors).
function nudge(bytes: Uint8Array, tensor: string, index: number, delta: number): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(out.subarray(8, 8 + headerLen)).toString('utf8'));
  const at = 8 + headerLen + header[tensor].data_offsets[0] + 4 * index;
  view.setFloat32(at, view.getFloat32(at, true) + delta, true);
  return out;
}

describe('GRPO step on the engine', () => {
  it('accumulates the gradient of the surrogate (finite differences through the engine)', async () => {
    const model = await Model.create(config, { seed: 11, threads: 1 });
    const batch = await randomBatch(model, 5);
    const ref = (await referenceLogprobs(await Model.create(config, { seed: 12, threads: 1 }), batch, batch.n))[0];
    await model.zeroGrad();
    const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths });
    const out = policyLoss({ ...lossCfg, n: batch.n, t: batch.seqLen - 1, logprobs, oldLogprobs: batch.oldLogprobs, refLogprobs: ref, mask: batch.mask, advantages: batch.advantages });
    await model.backward(Float32Array.from(out.dlogprobs));
    const grads = await model.grads();
    const base = await model.exportWeights();

    for (const name of ['model.layers.1.mlp.up_proj.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.embed_tokens.weight']) {
      const g = grads[name];
      // The entries with the largest gradients, where finite differences are most telling.
      const top = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
      for (const i of top) {
        const h = 1e-2;
        await model.importWeights(nudge(base, name, i, h));
        const plus = await surrogate(model, batch, ref);
        await model.importWeights(nudge(base, name, i, -h));
        const minus = await surrogate(model, batch, ref);
        const fd = (plus - minus) / (2 * h);
        expect(Math.abs(fd - g[i])).toBeLessThan(2e-2 * Math.abs(g[i]) + 1e-5);
      }
      await model.importWeights(base);
    }
  });

  it('raises the log-probs of completions with positive advantages', async () => {
    const model = await Model.create(config, { seed: 21, threads: 1 });
    const batch = await randomBatch(model, 9);
    const T = batch.seqLen - 1;
    const meanLp = async () => {
      const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths });
      const per = Array.from({ length: batch.n }, (_, i) => {
        let s = 0;
        let c = 0;
        for (let j = i * T; j < (i + 1) * T; j++) {
          if (!batch.mask[j]) continue;
          s += logprobs[j];
          c++;
        }
        return s / c;
      });
      return per;
    };
    const before = await meanLp();
    const metrics = [];
    for (let step = 0; step < 5; step++) {
      metrics.push(await grpoStep(model, batch, { ...lossCfg, beta: 0, numIterations: 2, microBatchSize: 2 }, { lr: 1e-2 }));
    }
    const after = await meanLp();
    for (let i = 0; i < batch.n; i++) {
      if (batch.advantages[i] > 0.5) expect(after[i]).toBeGreaterThan(before[i]);
      if (batch.advantages[i] < -0.5) expect(after[i]).toBeLessThan(before[i]);
    }
    expect(metrics[0].gradNorm).toBeGreaterThan(0);
    expect(metrics[0].entropy).toBeGreaterThan(0);
    expect(metrics[0].trainedTokens).toBe(batch.maskedTokens);
    // Reusing one batch walks the ratios out of the trust region: clipping takes over.
    expect(metrics[4].clipFraction).toBeGreaterThan(metrics[0].clipFraction);
  });

  it('measures the rollout/training mismatch and, with importance sampling, weights each token by it', async () => {
    const model = await Model.create(config, { seed: 31, threads: 1 });
    const batch = await randomBatch(model, 13);
    const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths, grad: false });
    const expected = logprobMismatch(logprobs, batch.oldLogprobs, batch.mask);
    const t = batch.seqLen - 1;
    const weights = importanceWeights({ n: batch.n, t, trainLogprobs: logprobs, rolloutLogprobs: batch.oldLogprobs, mask: batch.mask, mode: 'token_truncate', cap: 1.02 });
    const cfg = { ...lossCfg, beta: 0, microBatchSize: 2, importanceSampling: { mode: 'token_truncate' as const, cap: 1.02 } };
    const m = await grpoStep(model, batch, cfg, { lr: 0 });
    // randomBatch nudged the rollout log-probs by up to ±0.05.
    expect(m.mismatch.tokens).toBe(batch.maskedTokens);
    expect(m.mismatch.meanAbsDiff).toBeCloseTo(expected.meanAbsDiff, 6);
    expect(m.mismatch.maxAbsDiff).toBeCloseTo(expected.maxAbsDiff, 6);
    expect(m.mismatch.maxAbsDiff).toBeGreaterThan(0.01);
    expect(m.mismatch.kl).toBeCloseTo(expected.kl, 7);
    expect(m.importanceWeight!.mean).toBeCloseTo(weights.meanWeight, 6);
    expect(m.importanceWeight!.cappedFraction).toBeCloseTo(weights.cappedFraction, 12);
    expect(m.importanceWeight!.cappedFraction).toBeGreaterThan(0);
    // The clipped ratio's old policy is now the learner's own first pass: exactly on-policy.
    expect(m.meanRatio).toBe(1);
    expect(m.clipFraction).toBe(0);
  });

  it('leaves the weights alone when every token is masked (token_mask, sequence_mask under a tiny cap)', async () => {
    for (const mode of ['token_mask', 'sequence_mask'] as const) {
      const model = await Model.create(config, { seed: 41, threads: 1 });
      const batch = await randomBatch(model, 17);
      const before = await model.exportWeights();
      const m = await grpoStep(model, batch, { ...lossCfg, beta: 0, importanceSampling: { mode, cap: 1e-6 } }, { lr: 1e-2, weightDecay: 0 });
      expect(m.importanceWeight).toEqual({ mean: 0, cappedFraction: 1 });
      expect(m.gradNorm).toBe(0);
      expect(Buffer.from(await model.exportWeights()).equals(Buffer.from(before))).toBe(true);
    }
  });

  it('trains only the high-entropy tokens with top_entropy_quantile', async () => {
    const model = await Model.create(config, { seed: 51, threads: 1 });
    const batch = await randomBatch(model, 19);
    const { entropy, logprobs } = await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths, entropy: true, grad: false });
    // One micro-batch: the quantile is the whole batch's.
    const kept = highEntropyMask(entropy!, batch.mask, 0.5);
    expect(kept.keptFraction).toBeGreaterThanOrEqual(0.5);
    const cfg = { ...lossCfg, beta: 0, microBatchSize: batch.n, topEntropyQuantile: 0.5 };
    // The gradient the step hands the engine is the surrogate's with the low-entropy tokens' policy terms at 0.
    const expected = policyLoss({ ...cfg, n: batch.n, t: batch.seqLen - 1, logprobs, oldLogprobs: batch.oldLogprobs, mask: batch.mask, policyWeights: kept.keep, advantages: batch.advantages });
    const m = await grpoStep(model, batch, cfg, { lr: 0 });
    expect(m.entropyKeptFraction).toBeCloseTo(kept.keptFraction, 12);
    expect(m.loss).toBeCloseTo(expected.loss, 6);
    const grads = await model.grads();
    await model.zeroGrad();
    await model.logprobs(batch.tokens, { batch: batch.n, seqLen: batch.seqLen, lengths: batch.lengths });
    await model.backward(Float32Array.from(expected.dlogprobs));
    const direct = await model.grads();
    for (const name of Object.keys(direct)) {
      for (let i = 0; i < direct[name].length; i++) expect(Math.abs(grads[name][i] - direct[name][i])).toBeLessThan(1e-6 + 1e-4 * Math.abs(direct[name][i]));
    }
  });

  it("agrees with the generator's log-probs to float rounding on the CPU, whatever the batch", async () => {
    const model = await Model.create({ ...config, vocab_size: 64, hidden_size: 32 }, { seed: 3, threads: 1 });
    const prompts = [new Int32Array([1, 5, 9, 3]), new Int32Array([2, 7]), new Int32Array([4, 4, 4, 4, 4, 8, 9])];
    const alone = (await Promise.all(prompts.map((p) => model.generate({ prompts: [p], maxNewTokens: 12, temperature: 1, seed: 5, n: 2 })))).flat();
    const together = await model.generate({ prompts, maxNewTokens: 12, temperature: 1, seed: 5, n: 2 });
    const sequences = [...alone.map((c, i) => ({ prompt: prompts[i >> 1], c })), ...together.map((c) => ({ prompt: prompts[c.prompt], c }))];
    // Scored one at a time and all in one padded batch.
    for (const groups of [sequences.map((s) => [s]), [sequences]]) {
      for (const g of groups) {
        const seqLen = Math.max(...g.map((s) => s.prompt.length + s.c.tokens.length));
        const tokens = new Int32Array(g.length * seqLen);
        const lengths = new Int32Array(g.length);
        g.forEach((s, i) => {
          tokens.set(s.prompt, i * seqLen);
          tokens.set(s.c.tokens, i * seqLen + s.prompt.length);
          lengths[i] = s.prompt.length + s.c.tokens.length;
        });
        const { logprobs } = await model.logprobs(tokens, { batch: g.length, seqLen, lengths, grad: false });
        g.forEach((s, i) => {
          for (let k = 0; k < s.c.tokens.length; k++) {
            // A few float32 ulps of a log-prob of magnitude ~4 (measured: at most 4.8e-7).
            expect(Math.abs(logprobs[i * (seqLen - 1) + s.prompt.length + k - 1] - s.c.logprobs[k])).toBeLessThan(2e-6);
          }
        });
      }
    }
  });
});
