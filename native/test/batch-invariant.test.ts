// The batch-invariant mode (batchInvariant: true): a sequence's log-probs, entropy, gradients
// and sampled tokens are the same bits alone as beside other sequences of other lengths, and
// decode through the KV cache gives the bits the training pass gives.
import { Model } from '@temper/native';

import { tinyConfig } from './helpers';

// Wide enough that products cross the mode's tiles: 320 > 256 deep (down_proj), 300 > 256
// columns (the head), and sequences of more than 32 rows.
const config = tinyConfig({
  vocab_size: 300,
  hidden_size: 64,
  intermediate_size: 320,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  attention_bias: true,
});

function tokens(len: number, seed: number): Int32Array {
  return Int32Array.from({ length: len }, (_, i) => (seed * 131 + i * 17 + ((i * i) % 11)) % config.vocab_size);
}

/** Sequences right-padded into one [batch, seqLen] buffer. */
function pack(seqs: Int32Array[], seqLen: number): Int32Array {
  const out = new Int32Array(seqs.length * seqLen);
  seqs.forEach((s, b) => out.set(s, b * seqLen));
  return out;
}

/** Row b's first n values of a [batch, width] result, as bytes (so -0 and NaN payloads count). */
function rowBytes(a: Float32Array, b: number, width: number, n: number): Buffer {
  return Buffer.from(a.buffer, a.byteOffset + b * width * 4, n * 4);
}

async function gradients(model: Model, seqs: Int32Array[], seqLen: number, first: number): Promise<Record<string, Float32Array>> {
  await model.zeroGrad();
  await model.logprobs(pack(seqs, seqLen), { batch: seqs.length, seqLen, lengths: seqs.map((s) => s.length) });
  // Only the first sequence's tokens carry a gradient; the others' are 0.
  const d = new Float32Array(seqs.length * (seqLen - 1));
  for (let t = 0; t < first - 1; t++) d[t] = 1 - (t % 3) * 0.25;
  await model.backward(d);
  return model.grads();
}

describe('batch-invariant mode', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.create(config, { seed: 3, threads: 2, batchInvariant: true });
  });

  const seq = tokens(45, 1);
  const compositions: [string, Int32Array[], number, number][] = [
    ['alone', [seq], 45, 0],
    ['first of three, padded to 100', [seq, tokens(100, 2), tokens(7, 3)], 100, 0],
    ['second of four, padded to 64', [tokens(64, 4), seq, tokens(3, 5), tokens(50, 6)], 64, 1],
    ['last of two, padded to 45', [tokens(20, 7), seq], 45, 1],
  ];

  it('gives a sequence the same log-probs and entropy bits in every batch', async () => {
    const results = [];
    for (const [, seqs, seqLen, at] of compositions) {
      const r = await model.logprobs(pack(seqs, seqLen), {
        batch: seqs.length,
        seqLen,
        lengths: seqs.map((s) => s.length),
        entropy: true,
        grad: false,
      });
      results.push({
        logprobs: rowBytes(r.logprobs, at, seqLen - 1, seq.length - 1),
        entropy: rowBytes(r.entropy!, at, seqLen - 1, seq.length - 1),
      });
    }
    // The values are real (not all zero), and bit-equal across compositions.
    expect(new Float32Array(results[0].logprobs.buffer.slice(0)).some((x) => x < -1)).toBe(true);
    for (const [i, r] of results.entries()) {
      expect([compositions[i][0], r.logprobs.equals(results[0].logprobs)]).toEqual([compositions[i][0], true]);
      expect([compositions[i][0], r.entropy.equals(results[0].entropy)]).toEqual([compositions[i][0], true]);
    }
  });

  it('gives the same gradient bits when the other sequences in the batch carry no gradient', async () => {
    const alone = await gradients(model, [seq], 45, seq.length);
    const batched = await gradients(model, [seq, tokens(100, 2), tokens(30, 3)], 100, seq.length);
    const names = Object.keys(alone);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) {
      const a = alone[name];
      expect(a.some((x) => x !== 0)).toBe(true);
      const same = Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
        Buffer.from(batched[name].buffer, batched[name].byteOffset, batched[name].byteLength),
      );
      expect([name, same]).toEqual([name, true]);
    }
  });

  it('samples a prompt the same alone as beside others (per-prompt seeds), and decode matches training bit for bit', async () => {
    const prompt = tokens(9, 8);
    const o = { maxNewTokens: 24, temperature: 1, n: 2 };
    const alone = await model.generate({ ...o, prompts: [prompt], seeds: [77] });
    const others = [tokens(40, 9), prompt, tokens(3, 10)];
    const beside = await model.generate({ ...o, prompts: others, seeds: [5, 77, 6] });
    for (let s = 0; s < 2; s++) {
      const a = alone.find((c) => c.sample === s)!;
      const b = beside.find((c) => c.prompt === 1 && c.sample === s)!;
      expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
      expect(Buffer.from(b.logprobs.buffer).equals(Buffer.from(a.logprobs.buffer))).toBe(true);
      // The training pass over prompt + completion: the same bits as the rollout's log-probs.
      const all = new Int32Array(prompt.length + a.tokens.length);
      all.set(prompt);
      all.set(a.tokens, prompt.length);
      const { logprobs } = await model.logprobs(all, { batch: 1, seqLen: all.length, grad: false });
      const train = logprobs.slice(prompt.length - 1);
      expect(Buffer.from(train.buffer).equals(Buffer.from(a.logprobs.buffer))).toBe(true);
    }
  });

  it('refuses bf16 and CUDA clearly, and checks the per-prompt seeds', async () => {
    await expect(Model.create(config, { batchInvariant: true, precision: 'bf16' })).rejects.toThrow(/batchInvariant.*fp32/);
    await expect(Model.create(config, { batchInvariant: true, device: 'cuda' })).rejects.toThrow(/batchInvariant is a CPU mode/);
    await expect(model.generate({ prompts: [tokens(3, 1), tokens(4, 2)], maxNewTokens: 2, seeds: [1] })).rejects.toThrow(
      /seeds has 1 entries for 2 prompts/,
    );
  });
});
