// Bad input is an Error with a clear message, never a crash: broken files, configs that do
// not match the weights, out-of-range tokens, wrong buffer lengths, NaN.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Model, readSafetensors } from '@temper/native';

import { f32Bytes, fixturesDir, SafetensorsEntry, tinyConfig, writeSafetensors } from './helpers';

const qwenDir = path.join(fixturesDir, 'qwen2-tiny');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const weights = new Uint8Array(fs.readFileSync(path.join(qwenDir, 'model.safetensors')));
const config = JSON.parse(fs.readFileSync(path.join(qwenDir, 'config.json'), 'utf8'));

let n = 0;
/** A model directory with the given config and weight bytes. */
function modelDir(cfg: unknown, bytes: Uint8Array): string {
  const dir = path.join(tmp, `m${n++}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), bytes);
  return dir;
}

type Header = Record<string, SafetensorsEntry>;

function header(bytes: Uint8Array): { json: Header; body: Uint8Array } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(Buffer.from(bytes.subarray(8, 8 + len)).toString()), body: bytes.subarray(8 + len) };
}

function withHeader(json: unknown, body: Uint8Array): Uint8Array {
  const h = Buffer.from(JSON.stringify(json));
  const out = new Uint8Array(8 + h.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(body, 8 + h.length);
  return out;
}

function edit(f: (json: Header) => void): Uint8Array {
  const { json, body } = header(weights);
  f(json);
  return withHeader(json, body);
}

const q = 'model.layers.0.self_attn.q_proj.weight';

describe('loading refuses broken checkpoints', () => {
  it.each<[string, () => Uint8Array, RegExp]>([
    ['an empty file', () => new Uint8Array(0), /too short/],
    ['a truncated file', () => weights.subarray(0, weights.length - 100), /past the data/],
    ['a header length past the file', () => {
      const b = weights.slice();
      new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
      return b;
    }, /header length .* runs past the end/],
    ['a header that is not JSON', () => {
      const b = weights.slice();
      b[8] = 0x78;
      return b;
    }, /invalid JSON/],
    ['an unknown dtype', () => edit((j) => (j[q].dtype = 'F8_E9M9')), /unknown dtype "F8_E9M9"/],
    ['an integer dtype for a weight', () => edit((j) => {
      j[q].dtype = 'I32';
    }), /has dtype I32; weights must be F32, F16 or BF16/],
    ['offsets past the data', () => edit((j) => (j[q].data_offsets = [0, 1e12])), /past the data/],
    ['offsets that disagree with the shape', () => edit((j) => (j[q].shape = [64, 65])), /bytes but shape and dtype need/],
    ['negative offsets', () => edit((j) => (j[q].data_offsets = [-4, 4])), /data_offsets must be/],
    ['overlapping tensors', () => edit((j) => (j['model.norm.weight'].data_offsets = [j[q].data_offsets[0], j[q].data_offsets[0] + 256])), /overlap/],
    ['a missing tensor', () => edit((j) => delete j[q]), /missing tensor "model.layers.0.self_attn.q_proj.weight"/],
    ['a shape the config does not have', () => edit((j) => {
      j[q].shape = [32, 128];
    }), /has shape \[32, 128\] but the config needs \[64, 64\]/],
    ['an unexpected tensor', () => edit((j) => {
      j['model.layers.9.extra.weight'] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    }), /unexpected tensor "model.layers.9.extra.weight"/],
    ['NaN in a weight', () => {
      const { json, body } = header(weights);
      const b = body.slice();
      new DataView(b.buffer).setFloat32(json[q].data_offsets[0] + 8, NaN, true);
      return withHeader(json, b);
    }, /contains NaN or infinity/],
  ])('%s', async (_, make, message) => {
    const dir = modelDir(config, make());
    await expect(Model.load(dir)).rejects.toThrow(message);
  });

  it('names the config field that is wrong', async () => {
    const bad = (over: Record<string, unknown>) => modelDir({ ...config, ...over }, weights);
    await expect(Model.load(bad({ num_key_value_heads: 3 }))).rejects.toThrow(/num_key_value_heads \(3\) must divide/);
    await expect(Model.load(bad({ model_type: 'gpt2' }))).rejects.toThrow(/model_type "gpt2" is not supported: the engine runs "llama", "mistral", "qwen2", "qwen3"/);
    await expect(Model.load(bad({ hidden_size: 'big' }))).rejects.toThrow(/hidden_size must be a positive integer/);
    await expect(Model.load(bad({ rope_scaling: { type: 'yarn' } }))).rejects.toThrow(/rope_scaling.rope_type "yarn" is not supported/);
    await expect(Model.load(bad({ rope_scaling: { rope_type: 'llama3' } }))).rejects.toThrow(/rope_scaling.factor is required/);
    await expect(Model.load(bad({ vocab_size: 100 }))).rejects.toThrow(/model.embed_tokens.weight" has shape \[128, 64\] but the config needs \[100, 64\]/);
    await expect(Model.load(bad({ tie_word_embeddings: false }))).rejects.toThrow(/missing tensor "lm_head.weight"/);
    await expect(Model.load(path.join(tmp, 'nowhere'))).rejects.toThrow(/cannot read .*config.json/);
  });

  it('refuses an index that points outside the directory', async () => {
    const dir = modelDir(config, weights);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { [q]: '../../etc/passwd' } }));
    await expect(Model.load(dir)).rejects.toThrow(/must name a .safetensors file in the same directory/);
  });

  it('refuses importWeights bytes from another shape and keeps the old weights', async () => {
    const m = await Model.load(qwenDir);
    const before = await m.weights('base');
    const other = await Model.create(tinyConfig(), { seed: 1 });
    await expect(m.importWeights(await other.exportWeights())).rejects.toThrow(/shape|missing tensor/);
    expect(await m.weights('base')).toEqual(before);
  });

  it('refuses importWeights bytes with a NaN in the last tensor and keeps every old weight', async () => {
    // Tensors are written over in place once all are checked: none may change before that.
    const m = await Model.load(qwenDir);
    const before = await m.weights('base');
    const good = await (await Model.create(config, { seed: 2 })).exportWeights();
    const { json, body } = header(good);
    for (const [i, bits] of [[3, 0x7fc00000], [0, 0xff800000]]) {
      const bytes = withHeader(json, body.slice());
      const at = 8 + (bytes.length - 8 - body.length) + json['model.norm.weight'].data_offsets[0] + 4 * i;
      new DataView(bytes.buffer).setUint32(at, bits, true);
      await expect(m.importWeights(bytes)).rejects.toThrow(new RegExp(`"model.norm.weight" contains NaN or infinity at element ${i}`));
      expect(await m.weights('base')).toEqual(before);
    }
    await m.importWeights(good);
    expect(await m.weights('base')).not.toEqual(before);
  });
});

describe('calls refuse bad arguments', () => {
  let m: Model;
  beforeAll(async () => {
    m = await Model.load(qwenDir, { threads: 2 });
  });

  it('token ids out of range', async () => {
    await expect(m.forward(Int32Array.from([1, 2, 128]), { batch: 1, seqLen: 3 })).rejects.toThrow(/tokens\[2\] = 128 is out of range \[0, 128\)/);
    await expect(m.logprobs(Int32Array.from([1, -1, 3]), { batch: 1, seqLen: 3 })).rejects.toThrow(/= -1 is out of range/);
    await expect(m.generate({ prompts: [Int32Array.from([5, 500])], maxNewTokens: 2 })).rejects.toThrow(/prompts\[0\]\[1\] = 500 is out of range/);
  });

  it('wrong buffer lengths and types', async () => {
    await expect(m.forward(new Int32Array(5), { batch: 2, seqLen: 3 })).rejects.toThrow(/tokens has 5 elements, expected 6/);
    await expect(m.forward(new Float32Array(6) as unknown as Int32Array, { batch: 2, seqLen: 3 })).rejects.toThrow(/tokens must be a Int32Array/);
    await expect(m.logprobs(new Int32Array(6), { batch: 2, seqLen: 3, lengths: [3] })).rejects.toThrow(/lengths has 1 elements, expected 2/);
    await expect(m.logprobs(new Int32Array(6), { batch: 2, seqLen: 3, lengths: [3, 4] })).rejects.toThrow(/lengths\[1\] = 4 is out of range/);
    await expect(m.logprobs(new Int32Array(2), { batch: 2, seqLen: 1 })).rejects.toThrow(/seqLen must be an integer in \[2/);
    await m.logprobs(new Int32Array(6), { batch: 2, seqLen: 3 });
    await expect(m.backward(new Float32Array(5))).rejects.toThrow(/dlogprob has 5 elements, expected 4/);
    await expect(m.forward(new Int32Array(4), { batch: 0, seqLen: 4 })).rejects.toThrow(/batch must be an integer/);
  });

  it('batches too large for the machine', async () => {
    const big = await Model.create({ ...config, vocab_size: 65536 }, { threads: 1 });
    await expect(big.forward(new Int32Array(1 << 20), { batch: 1024, seqLen: 1024 })).rejects.toThrow(/a batch of 1024 x 1024 tokens would need .* MB, more than this machine/);
    const prompts = Array.from({ length: 8 }, () => Int32Array.from([1]));
    await expect(big.generate({ prompts, maxNewTokens: 4, n: 65536 })).rejects.toThrow(/generating 524288 completions .* would need/);
  });

  it('NaN in inputs', async () => {
    await m.logprobs(new Int32Array(6), { batch: 2, seqLen: 3 });
    await expect(m.backward(Float32Array.from([0, NaN, 0, 0]))).rejects.toThrow(/dlogprob\[1\] is not a finite number/);
    await expect(m.step({ lr: NaN })).rejects.toThrow(/lr must be finite/);
    await expect(m.generate({ prompts: [Int32Array.from([1])], maxNewTokens: 2, temperature: NaN })).rejects.toThrow(/temperature must be finite/);
  });

  it('bad sampling, optimizer and adapter options', async () => {
    await expect(m.generate({ prompts: [], maxNewTokens: 2 })).rejects.toThrow(/prompts is empty/);
    await expect(m.generate({ prompts: [new Int32Array(0)], maxNewTokens: 2 })).rejects.toThrow(/prompts\[0\] is empty/);
    await expect(m.generate({ prompts: [Int32Array.from([1])], maxNewTokens: 2, topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(m.generate({ prompts: [Int32Array.from([1])], maxNewTokens: -1 })).rejects.toThrow(/maxNewTokens must be an integer/);
    await expect(m.step({ lr: 1e-3, beta1: 1 })).rejects.toThrow(/beta1 must be in \[0, 1\)/);
    await expect(m.addAdapters({ r: 4, alpha: 8, targetModules: ['qkv'] })).rejects.toThrow(/unknown adapter target "qkv"/);
    await expect(m.mergeAdapters()).rejects.toThrow(/no adapters to merge/);
    await expect(m.saveAdapters(tmp)).rejects.toThrow(/no adapters to save/);
    await expect(Model.load(qwenDir, { threads: 0 })).rejects.toThrow(/threads must be an integer/);
    await expect(Model.load(qwenDir, { device: 'tpu' as unknown as 'cpu' })).rejects.toThrow(/device "tpu" is not one of "cpu", "cuda"/);
  });

  it('adapter files that do not fit the model', async () => {
    const dir = path.join(tmp, 'bad-adapter');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] }));
    const a = new Float32Array(4 * 64);
    const tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
    for (const l of [0, 1]) {
      tensors[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`] = { dtype: 'F32', shape: [4, 64], bytes: f32Bytes(a) };
      tensors[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`] = { dtype: 'F32', shape: [4, 64], bytes: f32Bytes(a) };
    }
    fs.writeFileSync(path.join(dir, 'adapter_model.safetensors'), writeSafetensors(tensors));
    const fresh = await Model.load(qwenDir);
    await expect(fresh.loadAdapters(dir)).rejects.toThrow(/lora_B.weight" has the wrong shape for r = 4/);
    expect(fresh.hasAdapters).toBe(false);
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ r: 4, target_modules: ['q_proj'], layers_to_transform: [0] }));
    await expect(fresh.loadAdapters(dir)).rejects.toThrow(/layers_to_transform is not supported/);
  });

  it('readSafetensors reports defects as Errors', () => {
    expect(() => readSafetensors(new Uint8Array(3))).toThrow(/too short/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)))).not.toThrow();
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)))).toThrow(/non-negative integers/);
    expect(() => readSafetensors(withHeader({ a: { dtype: 'F32', shape: [2] } }, new Uint8Array(8)))).toThrow(/data_offsets must be/);
    expect(() => readSafetensors(withHeader([1, 2], new Uint8Array(0)))).toThrow(/header is not a JSON object/);
  });
});
