// precision: 'bf16' on the CPU: base matrices read from bf16 copies, widened inside each product.
// A model whose weights are bf16 values computes the same function in either precision (only the
// summation order differs), through both product paths: few rows streaming the weight (a decode
// step, up to 64 rows) and many rows widening it block by block (training, prefill).
import { Model } from '@temper/native';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { relErr, tinyConfig } from './helpers';

// Widths that are not multiples of 16 (the kernels' vector width), so their tails run too.
const config = tinyConfig({ vocab_size: 150, hidden_size: 72, intermediate_size: 136, head_dim: 18, tie_word_embeddings: true });

function tokens(n: number, seed: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i * 37 + seed * 101 + 11) % 150);
}

/** An fp32 model and a bf16 one holding the same bf16-valued weights. */
async function pair(): Promise<{ f32: Model; b16: Model }> {
  const source = await Model.create(config, { seed: 5, threads: 2 });
  const bytes = await source.exportWeights({ dtype: 'BF16' });
  const f32 = await Model.create(config, { seed: 1, threads: 2 });
  const b16 = await Model.create(config, { seed: 1, threads: 2, precision: 'bf16' });
  await f32.importWeights(bytes);
  await b16.importWeights(bytes);
  return { f32, b16 };
}

describe("precision 'bf16' on the CPU", () => {
  it('says so in its device and leaves fp32 the default', async () => {
    expect((await Model.create(config, { threads: 1 })).device).toBe('cpu');
    expect((await Model.create(config, { threads: 1, precision: 'bf16' })).device).toBe('cpu (bf16)');
  });

  it.each([
    ['a few rows (weights streamed)', 2, 9],
    ['many rows (weights widened in blocks)', 3, 40],
  ])('computes what fp32 computes on bf16 weights: %s', async (_, batch, seqLen) => {
    const { f32, b16 } = await pair();
    const t = tokens(batch * seqLen, batch);
    const shape = { batch, seqLen };
    expect(relErr(await b16.forward(t, shape), await f32.forward(t, shape))).toBeLessThan(1e-5);
    const w = Float32Array.from({ length: batch * (seqLen - 1) }, (_, i) => Math.sin(i));
    for (const m of [f32, b16]) {
      await m.logprobs(t, shape);
      await m.zeroGrad();
      await m.backward(w);
    }
    const [g32, g16] = [await f32.grads(), await b16.grads()];
    expect(Object.keys(g16).sort()).toEqual(Object.keys(g32).sort());
    for (const k of Object.keys(g32)) {
      const err = relErr(g16[k], g32[k]);
      if (err >= 1e-5) throw new Error(`grad ${k}: relative error ${err}`);
    }
  });

  it('freezes: backward refused, the same log-probs from the bf16 copies alone, new weights still taken', async () => {
    const { b16 } = await pair();
    const t = tokens(2 * 12, 4);
    const shape = { batch: 2, seqLen: 12 };
    const before = await b16.logprobs(t, { ...shape, grad: false });
    const weights = await b16.weights('base');
    await b16.freeze();
    // The fp32 masters are gone; what remains are the bf16 copies, which hold the same values.
    expect(Array.from((await b16.logprobs(t, { ...shape, grad: false })).logprobs)).toEqual(Array.from(before.logprobs));
    const after = await b16.weights('base');
    for (const k of Object.keys(weights)) expect(Array.from(after[k])).toEqual(Array.from(weights[k]));
    await b16.logprobs(t, shape);
    await expect(b16.backward(new Float32Array(2 * 11))).rejects.toThrow(/frozen/);
    // A policy that only samples still takes the next version's weights (through the copies).
    const next = await Model.create(config, { seed: 9, threads: 2 });
    await b16.importWeights(await next.exportWeights({ dtype: 'BF16' }));
    const reference = await Model.create(config, { seed: 1, threads: 2, precision: 'bf16' });
    await reference.importWeights(await next.exportWeights({ dtype: 'BF16' }));
    expect(Array.from((await b16.logprobs(t, { ...shape, grad: false })).logprobs)).toEqual(Array.from((await reference.logprobs(t, { ...shape, grad: false })).logprobs));
  });

  it('is made and loaded frozen (frozen: true) as made and then frozen, bit for bit', async () => {
    const t = tokens(2 * 12, 6);
    const shape = { batch: 2, seqLen: 12, grad: false };
    const made = await Model.create(config, { seed: 5, threads: 2, precision: 'bf16', frozen: true });
    const later = await Model.create(config, { seed: 5, threads: 2, precision: 'bf16' });
    await later.freeze();
    const same = async (a: Model, b: Model) => {
      const [wa, wb] = [await a.weights('base'), await b.weights('base')];
      for (const k of Object.keys(wb)) expect(Buffer.from(wa[k].buffer).equals(Buffer.from(wb[k].buffer))).toBe(true);
      expect(Buffer.from((await a.logprobs(t, shape)).logprobs.buffer).equals(Buffer.from((await b.logprobs(t, shape)).logprobs.buffer))).toBe(true);
    };
    await same(made, later);
    await made.logprobs(t, { batch: 2, seqLen: 12 });
    await expect(made.backward(new Float32Array(2 * 11))).rejects.toThrow(/frozen/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-frozen-'));
    await (await Model.create(config, { seed: 8, threads: 2 })).save(dir);
    const loaded = await Model.load(dir, { threads: 2, precision: 'bf16', frozen: true });
    const loadedLater = await Model.load(dir, { threads: 2, precision: 'bf16' });
    await loadedLater.freeze();
    await same(loaded, loadedLater);
    await expect(Model.load(dir, { threads: 2, frozen: true, optimizer: true })).rejects.toThrow(/optimizer: a frozen model/);
    await expect(Model.create(config, { threads: 1, frozen: 'yes' as unknown as boolean })).rejects.toThrow(/frozen must be a boolean/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('made frozen, never holds the fp32 masters: peak memory of making one is the bf16 model', () => {
    // 6 layers of 1024 x (4 x 1024 + 3 x 4096): 101M projection weights, 403 MB in fp32, 201 MB in
    // bf16. Each model is made in a process of its own, whose peak is read from the kernel.
    const peak = (frozen: boolean) => {
      const script = `
const { Model } = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'index.js'))});
const fs = require('node:fs');
const kb = (key) => Number(new RegExp(key + ':\\\\s+(\\\\d+) kB').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
const config = { model_type: 'llama', vocab_size: 512, hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 6,
  num_attention_heads: 8, num_key_value_heads: 8, max_position_embeddings: 64, tie_word_embeddings: true };
const before = kb('VmRSS');
Model.create(config, { seed: 1, threads: 2, precision: 'bf16', frozen: ${frozen} }).then(async (m) => {
  if (!${frozen}) await m.freeze();
  console.log(JSON.stringify({ peak: (kb('VmHWM') - before) * 1024, now: (kb('VmRSS') - before) * 1024 }));
});`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { peak: number; now: number };
    };
    const [frozen, later] = [peak(true), peak(false)];
    const fp32Bytes = 101e6 * 4;
    // Frozen afterwards: both copies at once (~604 MB), then the bf16 ones; made frozen: the bf16 ones only.
    expect(later.peak - frozen.peak).toBeGreaterThan(0.75 * fp32Bytes);
    expect(Math.abs(later.now - frozen.now)).toBeLessThan(0.1 * fp32Bytes);
  }, 120_000);

  it('generates what fp32 generates on bf16 weights, its log-probs those of logprobs()', async () => {
    const { f32, b16 } = await pair();
    // 1 and 7 completions: a single row, and tiles of 4 rows with a tail.
    for (const count of [1, 7]) {
      const prompts = Array.from({ length: count }, (_, i) => tokens(3 + i, i));
      const opts = { prompts, maxNewTokens: 10, temperature: 0, seed: 3 };
      const [a, b] = [await f32.generate(opts), await b16.generate(opts)];
      for (let i = 0; i < count; i++) {
        expect(Array.from(b[i].tokens)).toEqual(Array.from(a[i].tokens));
        expect(relErr(b[i].logprobs, a[i].logprobs)).toBeLessThan(1e-5);
        const seq = Int32Array.from([...prompts[i], ...b[i].tokens]);
        const { logprobs } = await b16.logprobs(seq, { batch: 1, seqLen: seq.length });
        expect(relErr(b[i].logprobs, logprobs.slice(prompts[i].length - 1))).toBeLessThan(1e-5);
      }
    }
  });

  it('keeps fp32 masters in a full fine-tune and refreshes the bf16 copies after every step', async () => {
    const { f32, b16 } = await pair();
    const t = tokens(2 * 12, 4);
    const shape = { batch: 2, seqLen: 12 };
    const w = new Float32Array(2 * 11).fill(1);
    for (const m of [f32, b16]) {
      for (let s = 0; s < 2; s++) {
        await m.logprobs(t, shape);
        await m.zeroGrad();
        await m.backward(w);
        await m.step({ lr: 1e-2 });
      }
    }
    // The masters moved by less than a bf16 ulp still differ from their start (fp32 kept them).
    const [m32, m16] = [await f32.weights('base'), await b16.weights('base')];
    const q = 'model.layers.0.self_attn.q_proj.weight';
    expect(relErr(m16[q], m32[q])).toBeLessThan(1e-2);
    expect(m16[q].some((x) => x !== Math.fround(x) || (new Uint32Array(Float32Array.of(x).buffer)[0] & 0xffff) !== 0)).toBe(true);
    // Its products read the masters rounded to bf16 after each step: what a fresh bf16 model
    // converting the same masters computes, and no longer what it computed before the steps.
    const fresh = await Model.create(config, { seed: 1, threads: 2, precision: 'bf16' });
    await fresh.importWeights(await b16.exportWeights({ dtype: 'F32' }));
    const now = await b16.forward(t, shape);
    expect(relErr(now, await fresh.forward(t, shape))).toBeLessThan(1e-6);
    const start = (await pair()).b16;
    expect(relErr(now, await start.forward(t, shape))).toBeGreaterThan(1e-3);
  });

  it('stays close to fp32 on fp32 weights (the rounding of the weights alone)', async () => {
    const f32 = await Model.create(config, { seed: 9, threads: 2 });
    const b16 = await Model.create(config, { seed: 9, threads: 2, precision: 'bf16' });
    const t = tokens(3 * 20, 7);
    const shape = { batch: 3, seqLen: 20 };
    const [a, b] = [await f32.logprobs(t, shape), await b16.logprobs(t, shape)];
    const err = relErr(b.logprobs, a.logprobs);
    expect(err).toBeGreaterThan(0);
    expect(err).toBeLessThan(1e-2);
  });

  describe('a frozen base (adapters) keeps only its bf16 copies', () => {
    const lora = { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 2 };

    /** SFT steps maximising the tokens' log-prob: the mean log-prob before each step, and the adapters at the end. */
    async function sft(m: Model, steps: number): Promise<{ means: number[]; adapters: Record<string, Float32Array> }> {
      const t = tokens(3 * 16, 8);
      const shape = { batch: 3, seqLen: 16 };
      const w = new Float32Array(3 * 15).fill(-1 / (3 * 15));  // the step descends: minus the mean log-prob
      const means: number[] = [];
      for (let s = 0; s < steps; s++) {
        const { logprobs } = await m.logprobs(t, shape);
        means.push(logprobs.reduce((a, b) => a + b, 0) / logprobs.length);
        await m.zeroGrad();
        await m.backward(w);
        await m.step({ lr: 2e-2 });
      }
      return { means, adapters: await m.weights('adapters') };
    }

    it.each([
      ['LoRA', false],
      ['DoRA', true],
    ])('%s SFT on a bf16 base tracks the fp32 run', async (_, useDora) => {
      const { f32, b16 } = await pair();
      for (const m of [f32, b16]) await m.addAdapters({ ...lora, useDora });
      const [a, b] = [await sft(f32, 6), await sft(b16, 6)];
      expect(b.means[5]).toBeGreaterThan(b.means[0] + 0.05);  // it learns
      for (let s = 0; s < 6; s++) expect(Math.abs(b.means[s] - a.means[s])).toBeLessThan(1e-5 * Math.abs(a.means[s]) + 1e-6);
      for (const k of Object.keys(a.adapters)) {
        const err = relErr(b.adapters[k], a.adapters[k]);
        if (err >= 1e-4) throw new Error(`adapter ${k}: relative error ${err}`);
      }
    });

    it('LoRA SFT on a base rounded to bf16 stays within 1% of the fp32 run', async () => {
      const f32 = await Model.create(config, { seed: 9, threads: 2 });
      const b16 = await Model.create(config, { seed: 9, threads: 2, precision: 'bf16' });
      for (const m of [f32, b16]) await m.addAdapters(lora);
      const [a, b] = [await sft(f32, 6), await sft(b16, 6)];
      for (let s = 0; s < 6; s++) expect(Math.abs(b.means[s] - a.means[s])).toBeLessThan(1e-2 * Math.abs(a.means[s]));
    });

    it('still gives its values, exports, merges, and trains in full again after merging', async () => {
      const { f32, b16 } = await pair();
      const before = await f32.weights('base');
      for (const m of [f32, b16]) await m.addAdapters(lora);
      const base = await b16.weights('base');
      for (const k of Object.keys(before)) expect(Array.from(base[k])).toEqual(Array.from(before[k]));
      await sft(f32, 2);
      await sft(b16, 2);
      const t = tokens(2 * 10, 1);
      const shape = { batch: 2, seqLen: 10 };
      const exported = await Model.create(config, { seed: 1, threads: 2 });
      await exported.importWeights(await b16.exportWeights());
      expect(relErr(await exported.forward(t, shape), await b16.forward(t, shape))).toBeLessThan(1e-5);
      // Merged, the base has fp32 masters again (W + s B A); its products read them rounded to bf16.
      for (const m of [f32, b16]) await m.mergeAdapters();
      const [m32, m16] = [await f32.weights('base'), await b16.weights('base')];
      for (const k of Object.keys(m32)) expect(relErr(m16[k], m32[k])).toBeLessThan(1e-4);
      expect(relErr(await b16.forward(t, shape), await f32.forward(t, shape))).toBeLessThan(1e-2);
      const { means } = await sft(b16, 3);
      expect(means[2]).toBeGreaterThan(means[0]);
    });
  });
});
