// The CUDA backend against the truth, on a GPU: every fixture of ../shared/fixtures (fp32 mode
// to the CPU engine's tolerances, bf16 mode to mixed-precision ones), and CPU vs CUDA on a larger
// random Qwen2-like model: log-probs, gradients, AdamW, greedy and sampled generation, continuous
// batching, adapters, export / import. Skipped, with the reason in its title, without a device.
// On a GPU machine the fixtures must travel with the tree: TEMPER_FIXTURES names their folder.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { cudaDevices, HfConfig, Model, Precision } from '@temper/native';

import { fixturesDir as defaultFixtures, readGolden, relErr } from './helpers';

const devices = cudaDevices();
const gpu = devices.count > 0;
const fixturesDir = process.env.TEMPER_FIXTURES ?? defaultFixtures;
const fixtures = gpu && fs.existsSync(fixturesDir) ? fs.readdirSync(fixturesDir).filter((f) => fs.existsSync(path.join(fixturesDir, f, 'golden.safetensors'))) : [];
const suite = gpu ? describe : describe.skip;
const why = gpu ? `${devices.count} device(s)` : `skipped: no CUDA device (${devices.reason ?? 'none'})`;

// Tolerances: fp32 mode as the CPU engine's fixtures test; bf16 products (8-bit mantissa
// operands, fp32 accumulation) as METHOD.md's guide for bf16, with room for 2 layers of them.
const tol: Record<Precision, { logits: number; grads: number }> = {
  fp32: { logits: 2e-4, grads: 2e-3 },
  bf16: { logits: 3e-2, grads: 8e-2 },
};

// torch.optim.AdamW's first step on the values the model had, from its own gradient.
function adamwFirstStep(p: Float32Array, g: Float32Array, lr: number, b1: number, b2: number, eps: number, wd: number): Float64Array {
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const m = (1 - b1) * g[i];
    const v = (1 - b2) * g[i] * g[i];
    const mhat = m / (1 - b1);
    const vhat = v / (1 - b2);
    out[i] = p[i] * (1 - lr * wd) - (lr * mhat) / (Math.sqrt(vhat) + eps);
  }
  return out;
}

suite(`CUDA parity (${why})`, () => {
  if (gpu && fixtures.length === 0) {
    it('finds the fixtures', () => {
      throw new Error(`no fixtures in ${fixturesDir}; copy ../shared/fixtures into the tree and set TEMPER_FIXTURES`);
    });
  }

  const cases = fixtures.flatMap((f) => (['fp32', 'bf16'] as Precision[]).map((p) => [f, p] as const));
  if (cases.length > 0) describe.each(cases)('fixture %s, %s', (name, precision) => {
    const dir = path.join(fixturesDir, name);
    const { tensors: g, metadata } = readGolden(path.join(dir, 'golden.safetensors'));
    const ids = g.get('input_ids')!;
    const [B, T] = ids.shape;
    const tokens = Int32Array.from(ids.data);
    const adapters = fs.existsSync(path.join(dir, 'adapter_config.json'));
    const open = async () => {
      const m = await Model.load(dir, { device: 'cuda', precision, threads: 1 });
      if (adapters) await m.loadAdapters(dir);
      return m;
    };

    it('logits, log-probs, gradients and one AdamW step', async () => {
      const m = await open();
      const logits = await m.forward(tokens, { batch: B, seqLen: T });
      expect(relErr(logits, g.get('logits')!.data)).toBeLessThan(tol[precision].logits);
      const { logprobs } = await m.logprobs(tokens, { batch: B, seqLen: T });
      expect(relErr(logprobs, g.get('next_token_logprobs')!.data)).toBeLessThan(tol[precision].logits);
      await m.zeroGrad();
      await m.backward(Float32Array.from(g.get('dlogprob')!.data));
      const grads = await m.grads();
      const expected = [...g.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
      expect(Object.keys(grads).sort()).toEqual(expected.sort());
      for (const k of expected) {
        const err = relErr(grads[k], g.get(`grad.${k}`)!.data);
        if (err >= tol[precision].grads) throw new Error(`grad ${k}: relative error ${err}`);
      }
      // The step against torch's AdamW applied to the device's own gradients: the kernel exactly.
      const h = JSON.parse(metadata.adamw);
      const before = await m.weights('trainable');
      await m.step({ lr: h.lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weight_decay });
      const after = await m.weights('trainable');
      for (const k of expected) {
        const want = adamwFirstStep(before[k], grads[k], h.lr, h.beta1, h.beta2, h.eps, h.weight_decay);
        const err = relErr(after[k], want);
        if (err >= 1e-6) throw new Error(`adamw ${k}: relative error ${err}`);
      }
    });

    it('continues the prompt greedily', async () => {
      const m = await open();
      const want = g.get('greedy.tokens')!.data;
      const prompt = Int32Array.from(g.get('greedy.prompt')!.data);
      const [c] = await m.generate({ prompts: [prompt], maxNewTokens: want.length, temperature: 0 });
      if (precision === 'fp32') {
        expect(Array.from(c.tokens)).toEqual(Array.from(want));
        expect(relErr(c.logprobs, g.get('greedy.logprobs')!.data)).toBeLessThan(1e-4);
      }
      // Either precision: the reported log-probs are what logprobs() gives for the same tokens.
      const seq = Int32Array.from([...prompt, ...c.tokens]);
      const { logprobs } = await m.logprobs(seq, { batch: 1, seqLen: seq.length, grad: false });
      expect(relErr(c.logprobs, logprobs.slice(prompt.length - 1))).toBeLessThan(tol[precision].logits);
    });
  });

  // A Qwen2-shaped model large enough for the kernels' tiles to matter: head_dim 64, 8 query
  // heads on 2 key/value heads, a sequence length that is not a multiple of any tile.
  const config: HfConfig = {
    model_type: 'qwen2',
    vocab_size: 4099,
    hidden_size: 256,
    intermediate_size: 704,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    rope_theta: 1000000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    max_position_embeddings: 4096,
  } as HfConfig;
  const B = 3;
  const T = 133;
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % 4099);
  const lengths = Int32Array.from([T, 101, 40]);
  const dlogprob = Float32Array.from({ length: B * (T - 1) }, (_, i) => Math.sin(i) * 0.1);

  describe.each(['fp32', 'bf16'] as Precision[])('CPU vs CUDA on a random model, %s', (precision) => {
    it('log-probs, entropy, gradients and a clipped step', async () => {
      const cpu = await Model.create(config, { seed: 5, threads: 2 });
      const gpuModel = await Model.create(config, { seed: 5, device: 'cuda', precision });
      const a = await cpu.logprobs(tokens, { batch: B, seqLen: T, lengths, entropy: true });
      const b = await gpuModel.logprobs(tokens, { batch: B, seqLen: T, lengths, entropy: true });
      expect(relErr(b.logprobs, a.logprobs)).toBeLessThan(tol[precision].logits);
      expect(relErr(b.entropy!, a.entropy!)).toBeLessThan(tol[precision].logits);
      await cpu.backward(dlogprob);
      await gpuModel.backward(dlogprob);
      const ga = await cpu.grads();
      const gb = await gpuModel.grads();
      for (const k of Object.keys(ga)) {
        const err = relErr(gb[k], ga[k]);
        if (err >= tol[precision].grads) throw new Error(`grad ${k}: relative error ${err}`);
      }
      const na = await cpu.step({ lr: 1e-3, maxGradNorm: 0.5 });
      const nb = await gpuModel.step({ lr: 1e-3, maxGradNorm: 0.5 });
      expect(Math.abs(nb - na) / na).toBeLessThan(tol[precision].grads);
      // After a step both take the same second batch to within the same tolerance.
      const a2 = await cpu.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
      const b2 = await gpuModel.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
      expect(relErr(b2.logprobs, a2.logprobs)).toBeLessThan(2 * tol[precision].logits);
    });

    it('generates as the CPU does, and continuous batching changes nothing', async () => {
      const cpu = await Model.create(config, { seed: 6, threads: 2 });
      const all = await Model.create(config, { seed: 6, device: 'cuda', precision });
      const few = await Model.create(config, { seed: 6, device: 'cuda', precision, maxSlots: 3 });
      const prompts = Array.from({ length: 9 }, (_, p) => Int32Array.from({ length: 1 + ((p * 5) % 17) }, (_, i) => (p * 31 + i * 7) % 4099));
      const greedy = { prompts, maxNewTokens: 12, temperature: 0 };
      const gc = await cpu.generate(greedy);
      const gg = await all.generate(greedy);
      if (precision === 'fp32') for (let i = 0; i < gc.length; i++) expect(Array.from(gg[i].tokens)).toEqual(Array.from(gc[i].tokens));
      const sampled = { prompts, maxNewTokens: 16, temperature: 0.8, topP: 0.9, topK: 40, seed: 3, n: 2, stopTokens: [7, 11] };
      const sa = await all.generate(sampled);
      const sf = await few.generate(sampled);
      expect(sf.length).toBe(18);
      if (precision === 'fp32') {
        // No split-K in fp32 mode and attention is per row: the order rows run in cannot matter.
        for (let i = 0; i < sa.length; i++) {
          expect(Array.from(sf[i].tokens)).toEqual(Array.from(sa[i].tokens));
          expect(Array.from(sf[i].logprobs)).toEqual(Array.from(sa[i].logprobs));
        }
        const sc = await cpu.generate(sampled);
        let same = 0;
        for (let i = 0; i < sc.length; i++) same += Number(sc[i].tokens.join() === sa[i].tokens.join());
        expect(same).toBeGreaterThanOrEqual(sc.length - 2);  // a draw that lands on a cut may differ
      }
      for (const c of sf) {
        expect(c.tokens.length).toBeGreaterThan(0);
        expect(c.finishReason === 'stop' ? [7, 11].includes(c.tokens[c.tokens.length - 1]) : c.tokens.length === 16).toBe(true);
      }
    });

    it('trains adapters, merges them and moves weights through export / import', async () => {
      const cpu = await Model.create(config, { seed: 8, threads: 2 });
      const dev = await Model.create(config, { seed: 8, device: 'cuda', precision });
      for (const m of [cpu, dev]) {
        await m.addAdapters({ r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj', 'down_proj'], useDora: true, seed: 1 });
        await m.logprobs(tokens, { batch: B, seqLen: T, lengths });
        await m.backward(dlogprob);
      }
      const ga = await cpu.grads();
      const gb = await dev.grads();
      for (const k of Object.keys(ga)) {
        // B starts at zero, so A's gradient is zero too; compare where there is something.
        if (ga[k].some((x) => x !== 0)) {
          const err = relErr(gb[k], ga[k]);
          if (err >= tol[precision].grads) throw new Error(`adapter grad ${k}: relative error ${err}`);
        }
      }
      await cpu.step({ lr: 1e-2 });
      await dev.step({ lr: 1e-2 });
      const bytes = await dev.exportWeights();
      const other = await Model.create(config, { seed: 99, device: 'cuda', precision });
      await other.importWeights(bytes);
      const x = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
      const y = await other.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
      expect(relErr(y.logprobs, x.logprobs)).toBeLessThan(tol[precision].logits / 4);
      await dev.mergeAdapters();
      const z = await dev.logprobs(tokens, { batch: B, seqLen: T, lengths, grad: false });
      expect(relErr(z.logprobs, x.logprobs)).toBeLessThan(tol[precision].logits / 4);
    });
  });
});
