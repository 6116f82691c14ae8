// Training calls, checkpoints and weight movement: padding, entropy, gradient accumulation,
// clipping, exact resume, F32/BF16/F16 and sharded files, adapters, export/import, threads.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Model, readSafetensors, trimMemory } from '@temper/native';

import { f32Bytes, fixturesDir, fromF16, relErr, tinyConfig, toF16, writeSafetensors } from './helpers';

const qwenDir = path.join(fixturesDir, 'qwen2-tiny');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-engine-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tokens(n: number, vocab: number, seed = 1): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (seed * 13 + i * 7 + ((i * i) % 5)) % vocab);
}

const sumSq = (gs: Record<string, Float32Array>) => Object.values(gs).reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0);

describe('training calls', () => {
  it('scores right-padded rows as if unpadded, whatever the padding holds', async () => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const T = 10;
    const a = tokens(T, 128, 1);
    const b = tokens(6, 128, 2);
    const batch = (pad: number) => {
      const t = new Int32Array(2 * T).fill(pad);
      t.set(a);
      t.set(b, T);
      return t;
    };
    const w = Float32Array.from({ length: 2 * (T - 1) }, (_, i) => Math.sin(i + 1));
    const p1 = await m.logprobs(batch(0), { batch: 2, seqLen: T, lengths: [T, 6], entropy: true });
    await m.zeroGrad();
    await m.backward(w);
    const g1 = await m.grads();
    const p2 = await m.logprobs(batch(99999), { batch: 2, seqLen: T, lengths: [T, 6] });
    await m.zeroGrad();
    await m.backward(w);
    const g2 = await m.grads();
    expect(Array.from(p1.logprobs)).toEqual(Array.from(p2.logprobs));
    for (const k of Object.keys(g1)) expect(Array.from(g1[k])).toEqual(Array.from(g2[k]));
    expect(Array.from(p1.logprobs.slice(T - 1 + 5))).toEqual([0, 0, 0, 0]);
    const single = await m.logprobs(b, { batch: 1, seqLen: 6 });
    expect(relErr(p1.logprobs.slice(T - 1, T - 1 + 5), single.logprobs)).toBeLessThan(1e-6);
    // Entropy against forward()'s logits.
    const logits = await m.forward(a, { batch: 1, seqLen: T });
    for (let t = 0; t < T - 1; t++) {
      const row = Array.from(logits.slice(t * 128, (t + 1) * 128));
      const mx = Math.max(...row);
      const z = row.reduce((s, l) => s + Math.exp(l - mx), 0);
      const h = -row.reduce((s, l) => s + (Math.exp(l - mx) / z) * (l - mx - Math.log(z)), 0);
      expect(p1.entropy![t]).toBeCloseTo(h, 4);
    }
  });

  it('accumulates gradients until zeroGrad and frees the batch after backward', async () => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const t = tokens(16, 128);
    const w = new Float32Array(15).fill(0.1);
    await m.logprobs(t, { batch: 1, seqLen: 16 });
    await m.backward(w);
    const once = await m.grads();
    await expect(m.backward(w)).rejects.toThrow(/needs a logprobs call/);
    await m.logprobs(t, { batch: 1, seqLen: 16 });
    await m.backward(w);
    const twice = await m.grads();
    for (const k of Object.keys(once)) expect(relErr(twice[k], once[k].map((x) => 2 * x))).toBeLessThan(1e-6);
    await m.zeroGrad();
    expect(sumSq(await m.grads())).toBe(0);
    const ref = await m.logprobs(t, { batch: 1, seqLen: 16, grad: false });
    await expect(m.backward(w)).rejects.toThrow(/needs a logprobs call/);
    expect(relErr(ref.logprobs, (await m.logprobs(t, { batch: 1, seqLen: 16 })).logprobs)).toBe(0);
  });

  it('queues calls issued together on one model', async () => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const inputs = [1, 2, 3, 4, 5, 6].map((s) => tokens(24, 128, s));
    const alone: Float32Array[] = [];
    for (const t of inputs) alone.push(await m.forward(t, { batch: 2, seqLen: 12 }));
    const together = await Promise.all(inputs.map((t) => m.forward(t, { batch: 2, seqLen: 12 })));
    together.forEach((x, i) => expect(Array.from(x)).toEqual(Array.from(alone[i])));
  });

  it('returns the pre-clip gradient norm and clips to maxGradNorm', async () => {
    const run = async (maxGradNorm?: number) => {
      const m = await Model.load(qwenDir, { threads: 2 });
      await m.logprobs(tokens(16, 128), { batch: 1, seqLen: 16 });
      await m.backward(new Float32Array(15).fill(1));
      const norm = Math.sqrt(sumSq(await m.grads()));
      const before = await m.weights();
      const got = await m.step({ lr: 0.01, weightDecay: 0, maxGradNorm });
      return { norm, got, before, after: await m.weights() };
    };
    const free = await run();
    expect(free.got).toBeCloseTo(free.norm, 3);
    const clipped = await run(free.norm / 10);
    expect(clipped.got).toBeCloseTo(free.norm, 3);
    // Adam's first step is lr * g / (|g| + eps): scale-free, so clipping changes it only through eps.
    expect(relErr(clipped.after['model.norm.weight'], free.after['model.norm.weight'])).toBeLessThan(1e-4);
  });

  it('resumes exactly from a checkpoint with optimizer state', async () => {
    const batch = tokens(24, 128, 3);
    const w = Float32Array.from({ length: 23 }, (_, i) => Math.cos(i));
    const train = async (m: Model) => {
      await m.zeroGrad();
      await m.logprobs(batch, { batch: 1, seqLen: 24 });
      await m.backward(w);
      await m.step({ lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1 });
    };
    const a = await Model.load(qwenDir, { threads: 2 });
    await train(a);
    await train(a);
    const dir = path.join(tmp, 'resume');
    await a.save(dir, { optimizer: true });
    const b = await Model.load(dir, { optimizer: true, threads: 2 });
    await train(a);
    await train(b);
    const wa = await a.weights();
    const wb = await b.weights();
    for (const k of Object.keys(wa)) expect(Array.from(wb[k])).toEqual(Array.from(wa[k]));
    // Without the optimizer state the third step is a different one.
    const c = await Model.load(dir, { threads: 2 });
    await train(c);
    expect(Array.from((await c.weights())['model.norm.weight'])).not.toEqual(Array.from(wa['model.norm.weight']));
  });
});

describe('checkpoints', () => {
  it('round-trips F32 exactly and BF16 to bfloat16 rounding', async () => {
    const m = await Model.create(tinyConfig(), { seed: 3 });
    const w = await m.weights('base');
    await m.save(path.join(tmp, 'f32'));
    const f32 = await Model.load(path.join(tmp, 'f32'));
    const w32 = await f32.weights('base');
    for (const k of Object.keys(w)) expect(Array.from(w32[k])).toEqual(Array.from(w[k]));
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'f32', 'config.json'), 'utf8')).vocab_size).toBe(50);
    await m.save(path.join(tmp, 'bf16'), { dtype: 'BF16' });
    const raw = readSafetensors(fs.readFileSync(path.join(tmp, 'bf16', 'model.safetensors')));
    expect(raw.tensors['lm_head.weight'].dtype).toBe('BF16');
    const wb = await (await Model.load(path.join(tmp, 'bf16'))).weights('base');
    for (const k of Object.keys(w)) expect(relErr(wb[k], w[k])).toBeLessThan(2 ** -8);
  });

  it('loads F16 weights and sharded checkpoints with an index', async () => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const w = await m.weights('base');
    const names = Object.keys(w);
    const half: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
    const shards: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    const raw = readSafetensors(fs.readFileSync(path.join(qwenDir, 'model.safetensors')));
    names.forEach((k, i) => {
      const h = new Uint16Array(w[k].length);
      w[k].forEach((x, j) => (h[j] = toF16(x)));
      half[k] = { dtype: 'F16', shape: raw.tensors[k].shape, bytes: new Uint8Array(h.buffer) };
      shards[i % 2][k] = { dtype: 'F32', shape: raw.tensors[k].shape, bytes: f32Bytes(w[k]) };
      weightMap[k] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
    });
    const cfg = fs.readFileSync(path.join(qwenDir, 'config.json'));
    const f16dir = path.join(tmp, 'f16');
    fs.mkdirSync(f16dir);
    fs.writeFileSync(path.join(f16dir, 'config.json'), cfg);
    fs.writeFileSync(path.join(f16dir, 'model.safetensors'), writeSafetensors(half));
    const w16 = await (await Model.load(f16dir)).weights('base');
    for (const k of names) {
      const want = Float32Array.from(w[k], (x) => fromF16(toF16(x)));
      expect(relErr(w16[k], want)).toBeLessThan(1e-7);
    }
    const sharded = path.join(tmp, 'sharded');
    fs.mkdirSync(sharded);
    fs.writeFileSync(path.join(sharded, 'config.json'), cfg);
    shards.forEach((s, i) => fs.writeFileSync(path.join(sharded, `model-0000${i + 1}-of-00002.safetensors`), writeSafetensors(s)));
    fs.writeFileSync(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const s = await Model.load(sharded);
    const t = tokens(12, 128);
    expect(Array.from(await s.forward(t, { batch: 1, seqLen: 12 }))).toEqual(Array.from(await m.forward(t, { batch: 1, seqLen: 12 })));
  });

  // No reference values for scaled rotary embedding: these check the three regimes of the
  // llama3 rule against the plain and linear cases they reduce to.
  it('scales rotary frequencies per rope_scaling (linear, llama3)', async () => {
    const t = tokens(60, 50);
    const logits = async (rope_scaling: unknown) => {
      const m = await Model.create(tinyConfig({ rope_scaling, rope_theta: 10000 }), { seed: 3 });
      return m.forward(t, { batch: 1, seqLen: 60 });
    };
    const plain = await logits(null);
    const linear = await logits({ rope_type: 'linear', factor: 4 });
    expect(relErr(linear, plain)).toBeGreaterThan(1e-4);
    expect(Array.from(await logits({ rope_type: 'linear', factor: 1 }))).toEqual(Array.from(plain));
    // Every wavelength (2π .. 2π·10^4) under original/high_freq_factor: nothing changes.
    const high = { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1e6 };
    expect(Array.from(await logits(high))).toEqual(Array.from(plain));
    // Every wavelength over original/low_freq_factor: all divided by factor, as linear.
    const low = { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1 };
    expect(relErr(await logits(low), linear)).toBeLessThan(1e-6);
    // In between, the blend lands between the two.
    const mid = await logits({ rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 500 });
    expect(relErr(mid, plain)).toBeGreaterThan(1e-6);
    expect(relErr(mid, linear)).toBeGreaterThan(1e-6);
  });

  it('creates the same model for the same seed', async () => {
    const a = await (await Model.create(tinyConfig(), { seed: 9 })).weights('base');
    const b = await (await Model.create(tinyConfig(), { seed: 9 })).weights('base');
    const c = await (await Model.create(tinyConfig(), { seed: 10 })).weights('base');
    expect(Array.from(a['model.embed_tokens.weight'])).toEqual(Array.from(b['model.embed_tokens.weight']));
    expect(Array.from(a['model.embed_tokens.weight'])).not.toEqual(Array.from(c['model.embed_tokens.weight']));
    expect(Object.keys(a)).toContain('lm_head.weight');
    expect(Object.keys(a)).not.toContain('model.layers.0.self_attn.q_proj.bias');
  });

  it('moves weights between processes as bytes', async () => {
    const src = await Model.create(tinyConfig({ attention_bias: true, mlp_bias: true }), { seed: 1 });
    const dst = await Model.create(tinyConfig({ attention_bias: true, mlp_bias: true }), { seed: 2 });
    const t = tokens(10, 50);
    await dst.importWeights(await src.exportWeights());
    expect(Array.from(await dst.forward(t, { batch: 1, seqLen: 10 }))).toEqual(Array.from(await src.forward(t, { batch: 1, seqLen: 10 })));
    expect(Object.keys(await dst.weights('base'))).toContain('model.layers.1.self_attn.o_proj.bias');
  });

  it('saves exported weights as they are: the same file a save serializes', async () => {
    const m = await Model.create(tinyConfig(), { seed: 3 });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-save-weights-'));
    await m.save(path.join(tmp, 'serialized'));
    await m.save(path.join(tmp, 'given'), { weights: await m.exportWeights() });
    for (const file of ['model.safetensors', 'config.json']) {
      expect(fs.readFileSync(path.join(tmp, 'given', file)).equals(fs.readFileSync(path.join(tmp, 'serialized', file)))).toBe(true);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('gives cached scratch memory back on request and keeps working', async () => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const t = tokens(64, 128);
    const before = await m.forward(t, { batch: 2, seqLen: 32 });
    expect(trimMemory()).toBeGreaterThan(0);
    expect(trimMemory()).toBe(0);
    expect(Array.from(await m.forward(t, { batch: 2, seqLen: 32 }))).toEqual(Array.from(before));
  });

  it('gives the same numbers on 1 thread as on 2', async () => {
    const one = await Model.load(qwenDir, { threads: 1 });
    const two = await Model.load(qwenDir, { threads: 2 });
    const t = tokens(40, 128);
    expect(relErr(await one.forward(t, { batch: 2, seqLen: 20 }), await two.forward(t, { batch: 2, seqLen: 20 }))).toBeLessThan(1e-6);
  });

  it('keeps the event loop running during a long call', async () => {
    const m = await Model.create(tinyConfig({ hidden_size: 256, intermediate_size: 512, num_attention_heads: 4, head_dim: 64, num_hidden_layers: 4 }), { seed: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = Date.now();
    await m.forward(tokens(8 * 256, 50), { batch: 8, seqLen: 256 });
    const took = Date.now() - started;
    clearInterval(timer);
    if (took > 20) expect(ticks).toBeGreaterThan(took / 10);
  });
});

describe('adapters', () => {
  it.each([
    ['LoRA', { useDora: false, useRslora: false }],
    ['DoRA + rsLoRA', { useDora: true, useRslora: true }],
  ])('%s: train only adapters, save, load and merge', async (_, kind) => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const t = tokens(16, 128, 5);
    const base = await m.forward(t, { batch: 1, seqLen: 16 });
    await m.addAdapters({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 1, ...kind });
    expect(relErr(await m.forward(t, { batch: 1, seqLen: 16 }), base)).toBeLessThan(1e-6);
    for (let i = 0; i < 3; i++) {
      await m.zeroGrad();
      await m.logprobs(t, { batch: 1, seqLen: 16 });
      await m.backward(new Float32Array(15).fill(1));
      await m.step({ lr: 1e-2, weightDecay: 0 });
    }
    const names = Object.keys(await m.grads());
    expect(names.every((n) => n.startsWith('base_model.model.model.layers.'))).toBe(true);
    expect(names.length).toBe(2 * 3 * (kind.useDora ? 3 : 2));
    expect(await m.weights('base')).toEqual(await (await Model.load(qwenDir)).weights('base'));
    const tuned = await m.forward(t, { batch: 1, seqLen: 16 });
    expect(relErr(tuned, base)).toBeGreaterThan(1e-4);

    const dir = path.join(tmp, `adapter-${kind.useDora}`);
    await m.saveAdapters(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).use_dora).toBe(kind.useDora);
    const again = await Model.load(qwenDir, { threads: 2 });
    await again.loadAdapters(dir);
    expect(Array.from(await again.forward(t, { batch: 1, seqLen: 16 }))).toEqual(Array.from(tuned));

    const merged = await (async () => {
      const x = await Model.load(qwenDir, { threads: 2 });
      await x.importWeights(await m.exportWeights());
      return x.forward(t, { batch: 1, seqLen: 16 });
    })();
    expect(relErr(merged, tuned)).toBeLessThan(1e-5);
    await again.mergeAdapters();
    expect(again.hasAdapters).toBe(false);
    expect(relErr(await again.forward(t, { batch: 1, seqLen: 16 }), tuned)).toBeLessThan(1e-5);
    expect(Object.keys(await again.grads())).toContain('model.embed_tokens.weight');
  });

  it.each([
    ['LoRA', false],
    ['DoRA', true],
  ])('%s: moves adapters alone as bytes, and scores with the base alone when switched off', async (_, useDora) => {
    const m = await Model.load(qwenDir, { threads: 2 });
    const t = tokens(16, 128, 7);
    const lp = async (x: Model) => (await x.logprobs(t, { batch: 1, seqLen: 16, grad: false })).logprobs;
    const base = await lp(m);
    await m.addAdapters({ r: 4, alpha: 8, targetModules: ['q_proj', 'up_proj'], seed: 3, useDora });
    for (let i = 0; i < 2; i++) {
      await m.zeroGrad();
      await m.logprobs(t, { batch: 1, seqLen: 16 });
      await m.backward(new Float32Array(15).fill(1));
      await m.step({ lr: 1e-2, weightDecay: 0 });
    }
    const tuned = await lp(m);
    expect(relErr(tuned, base)).toBeGreaterThan(1e-4);
    // Switched off, the model is its base, bit for bit; switched on again, the tuned policy.
    expect(Array.from(await m.withoutAdapters(() => lp(m)))).toEqual(Array.from(base));
    expect(Array.from(await lp(m))).toEqual(Array.from(tuned));

    // Only the adapters' tensors travel: a model with the same base and adapters takes them.
    const bytes = await m.exportAdapters();
    expect(Object.keys(readSafetensors(bytes).tensors).every((n) => n.includes('.lora_'))).toBe(true);
    expect(bytes.length).toBeLessThan((await m.exportWeights()).length / 10);
    const other = await Model.load(qwenDir, { threads: 2 });
    await other.addAdapters({ r: 4, alpha: 8, targetModules: ['q_proj', 'up_proj'], seed: 9, useDora });
    await other.importAdapters(bytes);
    expect(Array.from(await lp(other))).toEqual(Array.from(tuned));
    // Adapters of another shape are refused whole, and the model keeps its own.
    const wrong = await Model.load(qwenDir, { threads: 2 });
    await wrong.addAdapters({ r: 2, alpha: 8, targetModules: ['q_proj', 'up_proj'], seed: 3, useDora });
    await expect(other.importAdapters(await wrong.exportAdapters())).rejects.toThrow(/imported adapters: adapter tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight" has the wrong shape/);
    expect(Array.from(await lp(other))).toEqual(Array.from(tuned));
    await expect((await Model.load(qwenDir)).importAdapters(bytes)).rejects.toThrow(/has no adapters to import into/);
  });
});

describe('Qwen3', () => {
  const qwen3Dir = path.join(fixturesDir, 'next', 'qwen3-tiny');

  it.each([
    ['LoRA', { useDora: false, useRslora: false }],
    ['DoRA + rsLoRA', { useDora: true, useRslora: true }],
  ])('%s on every projection: trains, and sampling with it reports what logprobs gives', async (_, kind) => {
    const m = await Model.load(qwen3Dir, { threads: 2 });
    const all = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
    await m.addAdapters({ r: 4, alpha: 8, targetModules: all, seed: 2, ...kind });
    const t = tokens(20, 144, 3);
    for (let i = 0; i < 3; i++) {
      await m.zeroGrad();
      await m.logprobs(t, { batch: 1, seqLen: 20 });
      await m.backward(new Float32Array(19).fill(1));
      await m.step({ lr: 2e-2, weightDecay: 0 });
    }
    const grads = await m.grads();
    expect(Object.keys(grads).length).toBe(2 * 7 * (kind.useDora ? 3 : 2));
    // The q/k norms are base weights: frozen under adapters, so no gradient of theirs.
    expect(Object.keys(grads).some((n) => n.includes('_norm'))).toBe(false);
    expect(Object.values(grads).every((g) => g.some((x) => x !== 0))).toBe(true);
    // Decode runs each head's norm after the adapters' products, the training pass after the
    // projections: the same function.
    const [c] = await m.generate({ prompts: [t.subarray(0, 6)], maxNewTokens: 14, temperature: 1, seed: 3 });
    const whole = Int32Array.from([...t.subarray(0, 6), ...c.tokens]);
    const { logprobs } = await m.logprobs(whole, { batch: 1, seqLen: 20, grad: false });
    expect(relErr(c.logprobs, logprobs.slice(5))).toBeLessThan(1e-5);
  });

  it('refuses a config its weights do not fit: q/k norms missing, or a tied head that differs', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(qwen3Dir, 'config.json'), 'utf8'));
    const qwen2 = path.join(tmp, 'qwen3-as-qwen2');
    fs.mkdirSync(qwen2);
    fs.writeFileSync(path.join(qwen2, 'config.json'), JSON.stringify({ ...config, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] }));
    fs.copyFileSync(path.join(qwen3Dir, 'model.safetensors'), path.join(qwen2, 'model.safetensors'));
    await expect(Model.load(qwen2)).rejects.toThrow(/missing tensor "model.layers.0.self_attn.q_proj.bias"|unexpected tensor ".*q_norm.weight"/);

    const m = await Model.load(qwen3Dir);
    const w = await m.weights('base');
    const raw = readSafetensors(fs.readFileSync(path.join(qwen3Dir, 'model.safetensors')));
    const withHead = (head: Float32Array) => {
      const t: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
      for (const [k, v] of Object.entries(w)) t[k] = { dtype: 'F32', shape: raw.tensors[k].shape, bytes: f32Bytes(v) };
      t['lm_head.weight'] = { dtype: 'F32', shape: raw.tensors['model.embed_tokens.weight'].shape, bytes: f32Bytes(head) };
      const dir = fs.mkdtempSync(path.join(tmp, 'tied-'));
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
      fs.writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(t));
      return dir;
    };
    const embed = w['model.embed_tokens.weight'];
    // A stored copy of the embedding is what transformers writes for some tied models: accepted.
    await expect(Model.load(withHead(embed))).resolves.toBeDefined();
    await expect(Model.load(withHead(embed.map((x) => x * 2)))).rejects.toThrow(/tie_word_embeddings is true but .* lm_head.weight that differs/);
  });
});

