// Activation recomputation: with recompute, logprobs keeps only each layer's input and backward
// runs the layer's forward again. The same ops on the same values give the same activations, so
// log-probs and gradients must be identical to the bit on the CPU, with and without adapters.
import { Model } from '@temper/native';

import { tinyConfig } from './helpers';

const B = 2;
const T = 70;

function bits(x: Float32Array): Buffer {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

async function pass(config: Record<string, unknown>, recompute: boolean, adapters?: 'lora' | 'dora') {
  const m = await Model.create(tinyConfig(config), { seed: 3, recompute });
  if (adapters) await m.addAdapters({ r: 4, alpha: 8, useDora: adapters === 'dora', targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 5 });
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 31 + ((i * i) % 7)) % 50);
  const { logprobs, entropy } = await m.logprobs(tokens, { batch: B, seqLen: T, lengths: [T, 41], entropy: true });
  await m.backward(Float32Array.from({ length: B * (T - 1) }, (_, i) => Math.sin(0.37 * i)));
  return { logprobs, entropy: entropy!, grads: await m.grads() };
}

describe.each([
  ['llama, full weights', { num_key_value_heads: 2 }, undefined],
  ['qwen3 head norms and biases', { model_type: 'qwen3', head_dim: 12, attention_bias: true }, undefined],
  ['LoRA adapters', { num_key_value_heads: 2 }, 'lora'],
  ['DoRA adapters', { num_key_value_heads: 2, mlp_bias: true }, 'dora'],
] as const)('recompute (%s)', (_, config, adapters) => {
  it('gives the same log-probs and gradients, bit for bit', async () => {
    const kept = await pass(config, false, adapters);
    const redone = await pass(config, true, adapters);
    expect(bits(redone.logprobs).equals(bits(kept.logprobs))).toBe(true);
    expect(bits(redone.entropy).equals(bits(kept.entropy))).toBe(true);
    expect(Object.keys(redone.grads).sort()).toEqual(Object.keys(kept.grads).sort());
    for (const [name, g] of Object.entries(kept.grads)) {
      if (!bits(redone.grads[name]).equals(bits(g))) throw new Error(`grad ${name} differs with recompute`);
    }
    // (Fresh adapters' A has no gradient while B is zero; everything else must have one.)
    const zero = Object.entries(kept.grads).filter(([, g]) => g.every((x) => x === 0)).map(([n]) => n);
    expect(zero.filter((n) => !n.includes('lora_A'))).toEqual([]);
  });
});

it('applies from the next logprobs call: a batch keeps the way it was computed', async () => {
  const m = await Model.create(tinyConfig(), { seed: 3 });
  const tokens = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 13) % 50);
  const w = new Float32Array(2 * 11).fill(1);
  await m.logprobs(tokens, { batch: 2, seqLen: 12 });
  await m.setTrainingOptions({ recompute: true });
  await m.backward(w);
  const first = await m.grads();
  await m.zeroGrad();
  await m.logprobs(tokens, { batch: 2, seqLen: 12 });
  await m.setTrainingOptions({ recompute: false });
  await m.backward(w);
  const second = await m.grads();
  for (const [name, g] of Object.entries(first)) expect(bits(second[name]).equals(bits(g))).toBe(true);
  await expect(m.setTrainingOptions({ recompute: 'yes' as unknown as boolean })).rejects.toThrow(/recompute/);
});

it('reaches the engine: a batch too large either way is refused with a smaller figure under recompute', async () => {
  // Refused before any work (the estimate exceeds the machine), so this costs nothing; the figure
  // in the error is what the training pass would hold. 256 x 32,768 tokens through 32 layers: 73 GB
  // even with recompute (which keeps each layer's input), ~400 GB without.
  const need = async (recompute: boolean) => {
    const m = await Model.create(tinyConfig({ num_hidden_layers: 32 }), { seed: 1, recompute });
    const T = 1 << 15;
    const err = await m.logprobs(new Int32Array(256 * T), { batch: 256, seqLen: T }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/a batch of 256 x 32768 tokens would need \d+ MB/);
    return Number(/would need (\d+) MB/.exec(err!.message)![1]);
  };
  const kept = await need(false);
  const redone = await need(true);
  expect(redone).toBeLessThan(kept / 4);
});
