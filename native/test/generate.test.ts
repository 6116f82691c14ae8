// Generation: the KV cache against full recomputation, batching against one-by-one, seeds,
// n samples, stop tokens, the sampling distribution itself, and a paged cache that holds what
// the completions really take rather than their worst case.
import * as os from 'node:os';
import * as path from 'node:path';

import { Model } from '@temper/native';

import { fixturesDir, relErr, tinyConfig } from './helpers';

const qwenDir = path.join(fixturesDir, 'qwen2-tiny');

function prompt(len: number, seed: number, vocab: number): Int32Array {
  return Int32Array.from({ length: len }, (_, i) => (seed * 31 + i * 17 + ((i * i) % 7)) % vocab);
}

/** logprobs() of each generated token, recomputed from scratch over prompt + completion. */
async function recomputed(model: Model, p: Int32Array, tokens: Int32Array): Promise<Float32Array> {
  const all = new Int32Array(p.length + tokens.length);
  all.set(p);
  all.set(tokens, p.length);
  const { logprobs } = await model.logprobs(all, { batch: 1, seqLen: all.length });
  return logprobs.slice(p.length - 1);
}

describe('generation', () => {
  let qwen: Model;
  beforeAll(async () => {
    qwen = await Model.load(qwenDir, { threads: 2 });
  });

  it.each([
    ['qwen2 fixture (GQA 4:2, tied, biases)', () => Promise.resolve(qwen)],
    ['1 kv head, explicit head_dim, untied', () => Model.create(tinyConfig(), { seed: 5 })],
    // Head sizes 64 and 128 take decode attention's register-held paths; 10 the general one.
    ['head_dim 64, 2 kv heads', () => Model.create(tinyConfig({ head_dim: 64, num_key_value_heads: 2 }), { seed: 6 })],
    ['head_dim 128', () => Model.create(tinyConfig({ head_dim: 128 }), { seed: 7 })],
  ])('agrees with full recomputation: %s', async (_, make) => {
    const model = await make();
    const vocab = model.config.vocab_size;
    const prompts = [prompt(7, 1, vocab), prompt(3, 2, vocab), prompt(12, 3, vocab)];
    const out = await model.generate({ prompts, maxNewTokens: 20, temperature: 1, seed: 11 });
    for (const c of out) {
      expect(c.tokens.length).toBe(20);
      const ref = await recomputed(model, prompts[c.prompt], c.tokens);
      expect(relErr(c.logprobs, ref)).toBeLessThan(1e-4);
    }
  });

  it('gives the same completions batched as one by one', async () => {
    const prompts = [prompt(9, 4, 128), prompt(2, 5, 128), prompt(15, 6, 128), prompt(5, 7, 128)];
    const batched = await qwen.generate({ prompts, maxNewTokens: 16, temperature: 0 });
    for (let i = 0; i < prompts.length; i++) {
      const [single] = await qwen.generate({ prompts: [prompts[i]], maxNewTokens: 16, temperature: 0 });
      expect(Array.from(batched[i].tokens)).toEqual(Array.from(single.tokens));
      expect(relErr(batched[i].logprobs, single.logprobs)).toBeLessThan(1e-5);
    }
  });

  it('is deterministic for a seed and varies across seeds and samples', async () => {
    const o = { prompts: [prompt(4, 8, 128)], maxNewTokens: 24, temperature: 1.3, topP: 0.99, n: 3 };
    const a = await qwen.generate({ ...o, seed: 42 });
    const b = await qwen.generate({ ...o, seed: 42 });
    const c = await qwen.generate({ ...o, seed: 43 });
    expect(a.map((x) => Array.from(x.tokens))).toEqual(b.map((x) => Array.from(x.tokens)));
    expect(a.map((x) => Array.from(x.tokens))).not.toEqual(c.map((x) => Array.from(x.tokens)));
    expect(a.map((x) => [x.prompt, x.sample])).toEqual([[0, 0], [0, 1], [0, 2]]);
    expect(new Set(a.map((x) => x.tokens.join(','))).size).toBe(3);
  });

  it('stops at a stop token and says why', async () => {
    const p = [prompt(6, 9, 128)];
    const [free] = await qwen.generate({ prompts: p, maxNewTokens: 12, temperature: 0 });
    const stopAt = free.tokens.indexOf(free.tokens[4]);
    const [stopped] = await qwen.generate({ prompts: p, maxNewTokens: 12, temperature: 0, stopTokens: [free.tokens[4]] });
    expect(stopped.finishReason).toBe('stop');
    expect(Array.from(stopped.tokens)).toEqual(Array.from(free.tokens.slice(0, stopAt + 1)));
    expect(free.finishReason).toBe('length');
  });

  // 6000 draws of one next token from the qwen2 fixture at temperature 2.5, top-k 40, top-p 0.9.
  // The expected distribution is computed here from forward()'s logits in float64. Tokens outside
  // the top-k/top-p set must never appear; over the kept set, Pearson's chi-square must stay under
  // df + 6 sqrt(2 df) (about 4 standard deviations of its null distribution; the seed is fixed, so
  // the test is deterministic and the bound only says how far the sampler may be off).
  it('samples the temperature / top-k / top-p distribution', async () => {
    const p = prompt(6, 10, 128);
    const logits = await qwen.forward(p, { batch: 1, seqLen: p.length });
    const last = Array.from(logits.slice((p.length - 1) * 128));
    const T = 2.5, K = 40, P = 0.9, draws = 6000;
    const scaled = last.map((l) => l / T);
    const order = scaled.map((_, i) => i).sort((a, b) => scaled[b] - scaled[a]).slice(0, K);
    const mx = scaled[order[0]];
    const w = order.map((i) => Math.exp(scaled[i] - mx));
    const z = w.reduce((s, x) => s + x, 0);
    const kept: number[] = [];
    const probs: number[] = [];
    let cum = 0;
    for (let j = 0; j < order.length && cum < P; j++) {
      kept.push(order[j]);
      probs.push(w[j] / z);
      cum += w[j] / z;
    }
    const pz = probs.reduce((s, x) => s + x, 0);
    expect(kept.length).toBeGreaterThan(5);
    expect(kept.length).toBeLessThan(K);
    const out = await qwen.generate({ prompts: [p], maxNewTokens: 1, temperature: T, topK: K, topP: P, seed: 7, n: draws });
    const counts = new Map<number, number>();
    for (const c of out) counts.set(c.tokens[0], (counts.get(c.tokens[0]) ?? 0) + 1);
    for (const t of counts.keys()) expect(kept).toContain(t);
    let chi = 0;
    kept.forEach((t, j) => {
      const e = (draws * probs[j]) / pz;
      chi += ((counts.get(t) ?? 0) - e) ** 2 / e;
    });
    const df = kept.length - 1;
    expect(chi).toBeLessThan(df + 6 * Math.sqrt(2 * df));
    // The reported log-prob is the model's own, not the truncated sampling distribution's.
    const lse = Math.log(last.reduce((s, l) => s + Math.exp(l - Math.max(...last)), 0)) + Math.max(...last);
    expect(out[0].logprobs[0]).toBeCloseTo(last[out[0].tokens[0]] - lse, 4);
  });

  // 64 completions of up to 60,000 new tokens on a model with 8 KB of keys and values per
  // position: their worst case is more than this machine's memory (a cache of fixed slots was
  // refused), but they stop within a few tokens, and the paged cache holds only what they write.
  it('runs a batch whose worst case would not fit, because the real lengths do', async () => {
    const model = await Model.create(
      tinyConfig({ num_key_value_heads: 4, head_dim: 128, max_position_embeddings: 65536 }),
      { seed: 9, threads: 2 },
    );
    const prompts = Array.from({ length: 16 }, (_, i) => prompt(5 + (i % 7) * 3, 20 + i, 50));
    const free = await model.generate({ prompts, maxNewTokens: 6, temperature: 0 });
    // Each prompt's greedy completion stops at its third token at the latest.
    const stopTokens = [...new Set(free.map((c) => c.tokens[2]))];
    const maxNewTokens = 60_000, n = 4;
    const kvBytesPerPosition = 2 * 2 * 4 * 128 * 4;  // k and v, 2 layers, 4 kv heads, head_dim 128, fp32
    const worst = prompts.reduce((s, p) => s + n * (p.length + maxNewTokens) * kvBytesPerPosition, 0);
    expect(worst).toBeGreaterThan(os.totalmem());
    const out = await model.generate({ prompts, maxNewTokens, temperature: 0, n, stopTokens });
    expect(out.length).toBe(prompts.length * n);
    for (const c of out) {
      const ref = free[c.prompt];
      const end = ref.tokens.findIndex((t) => stopTokens.includes(t));
      expect(end).toBeGreaterThanOrEqual(0);
      expect(c.finishReason).toBe('stop');
      expect(Array.from(c.tokens)).toEqual(Array.from(ref.tokens.slice(0, end + 1)));
      expect(relErr(c.logprobs, ref.logprobs.slice(0, end + 1))).toBeLessThan(1e-5);
    }
  });

  it('handles zero new tokens and top-k 1 as greedy', async () => {
    const p = [prompt(5, 11, 128)];
    const [none] = await qwen.generate({ prompts: p, maxNewTokens: 0 });
    expect(none.tokens.length).toBe(0);
    const [greedy] = await qwen.generate({ prompts: p, maxNewTokens: 8, temperature: 0 });
    const [k1] = await qwen.generate({ prompts: p, maxNewTokens: 8, temperature: 1, topK: 1, seed: 3 });
    expect(Array.from(k1.tokens)).toEqual(Array.from(greedy.tokens));
  });
});
