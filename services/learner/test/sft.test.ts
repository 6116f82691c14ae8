// SFT through the real engine: the loss and its gradient come from response tokens only, and
// the stage trains adapters (DoRA + rsLoRA) and exports them merged or kept.
import { buildSftExampleFromText, collateSft } from '@temper/data';
import { Model } from '@temper/native';
import { RunSpec, SftStage, StageSpec } from '@temper/proto';
import { createTokenizer } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crossEntropyBackward } from '../src/data/training';
import { sftExamples } from '../src/data/sft-examples';
import { loadForEval } from '../src/stages/eval';
import { adapterSettings } from '../src/stages/adapter';
import { batchOrder, runSftStage } from '../src/stages/sft';
import { runSpecFromYaml } from '../src/spec';
import { StageHarness, startStageHarness, tinyConfig } from './stage-harness';

const tokenizer = createTokenizer({ kind: 'byte' });
const config = { ...tinyConfig, vocab_size: tokenizer.vocabSize };

describe('SFT loss masking', () => {
  it('takes the loss and the gradient from response tokens (and EOS) only', async () => {
    const model = await Model.create(config, { seed: 3, threads: 1 });
    const pairs = [
      { prompt: 'Tom has 5 coins. Tom finds 2 more. How many coins now?', response: '<think>5+2=7</think><answer>7</answer>' },
      { prompt: 'Sort ascending: 3 1', response: '<think>1<3</think><answer>1 3</answer>' },
    ];
    const examples = pairs.map((p) => buildSftExampleFromText(tokenizer, p, { maxLength: 128 })!);
    const batch = collateSft(examples, tokenizer.specialTokens.pad!);
    // Record the d loss / d log-prob the stage hands the engine.
    let seen: Float32Array | undefined;
    const recording = Object.create(model) as Model;
    recording.backward = async (d: Float32Array) => {
      seen = d.slice();
      return model.backward(d);
    };
    const { loss, targets } = await crossEntropyBackward(recording, { tokens: batch.tokens, lossMask: batch.lossMask, batch: batch.batch, seqLen: batch.length, lengths: batch.lengths });
    const width = batch.length - 1;
    const responseTokens = examples.map((e) => e.tokens.length - e.promptLength);
    expect(targets).toBe(responseTokens[0] + responseTokens[1]);
    // Log-prob t-1 predicts token t: the gradient is -1/targets exactly where token t is a
    // response token or the closing EOS, and 0 over the prompt and the padding.
    const { logprobs } = await model.logprobs(batch.tokens, { batch: batch.batch, seqLen: batch.length, lengths: batch.lengths });
    let nll = 0;
    examples.forEach((e, row) => {
      for (let t = 1; t < batch.length; t++) {
        const inResponse = t >= e.promptLength && t < e.tokens.length;
        expect([row, t, seen![row * width + t - 1]]).toEqual([row, t, inResponse ? Math.fround(-1 / targets) : 0]);
        if (inResponse) nll -= logprobs[row * width + t - 1];
      }
    });
    expect(loss).toBeCloseTo(nll / targets, 5);
    // The engine has a gradient to apply.
    const grads = await model.grads();
    expect(Object.values(grads).some((g) => g.some((x) => x !== 0))).toBe(true);
  });

  it('draws examples from weighted sources through the chat template', async () => {
    const { examples } = await sftExamples(
      [
        { name: 'a', uri: 'builtin:arithmetic', weight: 3, fields: { difficulty: '1' } },
        { name: 's', uri: 'builtin:sorting', weight: 1, fields: { difficulty: '1' } },
      ],
      tokenizer,
      { numExamples: 400, maxSeqLen: 256, seed: 1 },
    );
    expect(examples).toHaveLength(400);
    const prompts = examples.map((e) => tokenizer.decode(e.tokens.subarray(0, e.promptLength)));
    for (const p of prompts) expect(p).toMatch(/^Q: .*\nA: $/s);
    const sorting = prompts.filter((p) => p.startsWith('Q: Sort')).length;
    expect(sorting / 400).toBeGreaterThan(0.17);
    expect(sorting / 400).toBeLessThan(0.33);
  });

  it('visits every example once per epoch', () => {
    const order = batchOrder(10, 4, 5, 'x');
    const flat = order.flat();
    expect(flat).toHaveLength(20);
    expect([...flat.slice(0, 10)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...flat.slice(10, 20)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('reads the adapter kinds', () => {
    expect(adapterSettings(undefined, 'sft.adapter')).toMatchObject({ kind: 'lora', rank: 8, alpha: 16, useRslora: false, useDora: false, merge: false });
    expect(adapterSettings({ kind: 'dora', rank: 4, alpha: 0, targetModules: ['q_proj'], useRslora: true, mergeOnExport: true, basePrecision: '' }, 'sft.adapter')).toMatchObject({
      kind: 'dora',
      rank: 4,
      alpha: 8,
      targetModules: ['q_proj'],
      useRslora: true,
      useDora: true,
      merge: true,
    });
    expect(adapterSettings({ kind: 'rslora', rank: 2, alpha: 4, targetModules: [], useRslora: false, mergeOnExport: false, basePrecision: '' }, 'sft.adapter').useRslora).toBe(true);
    expect(() => adapterSettings({ kind: 'qlora', rank: 2, alpha: 4, targetModules: [], useRslora: false, mergeOnExport: false, basePrecision: '' }, 'sft.adapter')).toThrow(/sft.adapter.kind: "qlora"/);
  });
});

describe('the SFT stage', () => {
  let h: StageHarness;
  let input: string;
  const yaml = (adapter: string) => `
name: sft
seed: 2
model: { tokenizer: bytes, config: ${JSON.stringify(tinyConfig)} }
stages:
  - name: sft
    sft:
      data: { sources: [ { name: arithmetic, uri: "builtin:arithmetic", weight: 1, fields: { difficulty: "1" } } ] }
      adapter: ${adapter}
      batch_size: 8
      num_examples: 32
      epochs: 2
      optimizer: { lr: 0.01 }
`;
  beforeAll(async () => {
    h = await startStageHarness();
    // The input: a saved tiny model.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-sft-input-'));
    const model = await Model.create(config, { seed: 9, threads: 1 });
    await model.save(dir);
    fs.writeFileSync(path.join(dir, 'temper-tokenizer.json'), JSON.stringify({ kind: 'byte' }));
    input = (await h.store.pushDir(dir, { runId: 'sft-input', stage: 'init' })).manifest.id;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const run = async (adapter: string) => {
    const spec: RunSpec = runSpecFromYaml(yaml(adapter));
    const stage: StageSpec = spec.stages[0];
    const ctx = h.context(spec, stage, { input, branch: 'short' });
    const result = await runSftStage(ctx, (stage.kind as { value: SftStage }).value);
    const [manifest] = (await h.store.list({ runId: ctx.runId })).checkpoints;
    return { ctx, result, manifest, spec, stage };
  };
  const weightsHash = async (id: string) => {
    const [c] = (await h.store.list({})).checkpoints.filter((m) => m.id === id);
    return c.files.find((f) => f.path === 'model.safetensors')!.sha256;
  };

  it('trains DoRA + rsLoRA adapters and merges them at export', async () => {
    const { ctx, result, manifest, spec, stage } = await run('{ kind: dora, rank: 4, alpha: 8, use_rslora: true, merge_on_export: true }');
    expect(ctx.metrics).toHaveLength(8);
    expect(ctx.metrics[7].values.loss).toBeLessThan(ctx.metrics[0].values.loss);
    expect(manifest.id).toBe(result.checkpointId);
    expect(manifest.parentId).toBe(input);
    expect(manifest.branch).toBe('short');
    expect(manifest.labels).toMatchObject({ final: 'true', adapter: 'dora', adapters: 'merged', rslora: 'true' });
    expect(manifest.files.map((f) => f.path)).not.toContain('adapter/adapter_config.json');
    expect(await weightsHash(manifest.id)).not.toBe(await weightsHash(input));
    // A finished stage is not trained again.
    const again = h.context(spec, stage, { input, branch: 'short', runId: ctx.runId });
    expect(await runSftStage(again, (stage.kind as { value: SftStage }).value)).toEqual(result);
    expect(again.metrics).toEqual([]);
  });

  it('keeps LoRA adapters beside unchanged base weights when not merging', async () => {
    const { manifest } = await run('{ kind: lora, rank: 4, alpha: 8 }');
    expect(manifest.labels).toMatchObject({ adapter: 'lora', adapters: 'kept' });
    expect(manifest.files.map((f) => f.path)).toEqual(expect.arrayContaining(['adapter/adapter_config.json', 'adapter/adapter_model.safetensors']));
    expect(await weightsHash(manifest.id)).toBe(await weightsHash(input));
    // Evaluation loads the adapters with the base model.
    const loaded = await loadForEval(h.store, manifest.id, 1);
    expect(loaded.model.hasAdapters).toBe(true);
  });

  it('trains LoRA on a bf16 base, tracking the fp32 run, and stores the base as it held it', async () => {
    const fp32 = await run('{ kind: lora, rank: 4, alpha: 8 }');
    const bf16 = await run('{ kind: lora, rank: 4, alpha: 8, base_precision: bf16 }');
    expect(bf16.manifest.labels).toMatchObject({ adapter: 'lora', adapters: 'kept' });
    // Same data, seed and adapters' start: the losses differ only by the base's bf16 rounding.
    expect(bf16.ctx.metrics.map((m) => m.step)).toEqual(fp32.ctx.metrics.map((m) => m.step));
    bf16.ctx.metrics.forEach((m, i) => expect(Math.abs(m.values.loss - fp32.ctx.metrics[i].values.loss)).toBeLessThan(0.02 * fp32.ctx.metrics[i].values.loss));
    expect(bf16.ctx.metrics.at(-1)!.values.loss).toBeLessThan(bf16.ctx.metrics[0].values.loss);
    // The base it saved is the one it trained on: the projections (what the adapters sit on) bf16
    // values, each the input's rounded; the rest (embedding, norms) as they were.
    const loaded = await loadForEval(h.store, bf16.manifest.id, 1);
    const base = await loaded.model.weights('base');
    const original = await (await Model.create(config, { seed: 9, threads: 1 })).weights('base');
    const projections = Object.keys(base).filter((name) => name.endsWith('_proj.weight'));
    expect(projections).toHaveLength(7);
    for (const [name, w] of Object.entries(base)) {
      if (!projections.includes(name)) {
        expect(w).toEqual(original[name]);
        continue;
      }
      const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
      expect(bits.every((b) => (b & 0xffff) === 0)).toBe(true);
      expect(w).not.toEqual(original[name]);
      w.forEach((x, i) => expect(Math.abs(x - original[name][i])).toBeLessThanOrEqual(Math.abs(original[name][i]) / 256));
    }
  });

  it('refuses a bf16 base for a full fine-tune, naming the field', async () => {
    await expect(run('{ kind: none, base_precision: bf16 }')).rejects.toThrow(/sft.adapter.base_precision: "bf16" .* kind "none"/);
    await expect(run('{ kind: lora, base_precision: fp16 }')).rejects.toThrow(/sft.adapter.base_precision: "fp16" is not one of fp32, bf16/);
  });
});
