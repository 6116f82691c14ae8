// Partial rollouts on the real engine: a rollout sampled a segment at a time goes on with the
// policy given at each segment's start, and each token keeps the version and the log-prob of
// the policy that produced it.
import { Model } from '@temper/native';
import { generateInSegments } from '../src/segments';

const config = { model_type: 'qwen2' as const, vocab_size: 48, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128, tie_word_embeddings: true };

/** log p(token) of each completion token under `model`, scoring prompt ++ tokens. */
async function scored(model: Model, prompt: Int32Array, tokens: Int32Array): Promise<Float32Array> {
  const seq = Int32Array.from([...prompt, ...tokens]);
  const { logprobs } = await model.logprobs(seq, { batch: 1, seqLen: seq.length, grad: false });
  return logprobs.subarray(prompt.length - 1);
}

describe('generateInSegments', () => {
  it('finishes a rollout with the version that arrives mid-way, token by token', async () => {
    const v1 = await Model.create(config, { seed: 1, threads: 1 });
    const v2 = await Model.create(config, { seed: 2, threads: 1 });
    const prompts = [Int32Array.from([3, 9, 4]), Int32Array.from([7, 7])];
    let calls = 0;
    // Version 2 reaches the generator after the first segment.
    const policy = () => (calls++ === 0 ? { model: v1, version: 1 } : { model: v2, version: 2 });
    const out = await generateInSegments({ policy, prompts, n: 2, maxNewTokens: 10, segmentTokens: 4, temperature: 1, topP: 1, topK: 0, stopTokens: [], seed: 5 });
    expect(out.map((c) => [c.prompt, c.sample])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    for (const c of out) {
      // No stop tokens: every rollout runs to the limit, 4 tokens from version 1, then 4 + 2 from version 2.
      expect(c.tokens).toHaveLength(10);
      expect(c.finishReason).toBe('length');
      expect(c.versions).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
      const byV1 = await scored(v1, prompts[c.prompt], c.tokens);
      const byV2 = await scored(v2, prompts[c.prompt], c.tokens);
      for (let k = 0; k < 10; k++) expect(Math.abs(c.logprobs[k] - (k < 4 ? byV1 : byV2)[k])).toBeLessThan(2e-6);
    }
    expect(calls).toBe(3); // segments of 4, 4 and 2 tokens
  });

  it('samples what one call samples when no new version comes and the segment covers the rollout', async () => {
    const v1 = await Model.create(config, { seed: 3, threads: 1 });
    const prompts = [Int32Array.from([1, 2, 3])];
    const whole = await v1.generate({ prompts, n: 3, maxNewTokens: 6, temperature: 1, seed: 11 });
    const segmented = await generateInSegments({ policy: () => ({ model: v1, version: 4 }), prompts, n: 3, maxNewTokens: 6, segmentTokens: 6, temperature: 1, topP: 1, topK: 0, stopTokens: [], seed: 11 });
    expect(segmented.map((c) => Array.from(c.tokens))).toEqual(whole.map((c) => Array.from(c.tokens)));
    for (const c of segmented) expect(c.versions).toEqual([4, 4, 4, 4, 4, 4]);
    await expect(generateInSegments({ policy: () => ({ model: v1, version: 4 }), prompts, n: 1, maxNewTokens: 6, segmentTokens: 0, temperature: 1, topP: 1, topK: 0, stopTokens: [], seed: 1 })).rejects.toThrow(/segmentTokens must be a positive integer/);
  });
});
