// What save and saveAdapters write is what Hugging Face loads: config.json naming the
// architecture with the engine's reading of every field, weights in shards with their index, and
// PEFT adapter directories with the very names, shapes and config fields of the fixtures' own
// adapter files (written by peft).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { Model, readSafetensors, shardWeights } from '@temper/native';

import { fixturesDir, relErr } from './helpers';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-hf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const qwen3Dir = path.join(fixturesDir, 'next', 'qwen3-tiny');
const tokens = Int32Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % 144);

describe('Hugging Face model directories', () => {
  it('writes config.json with the architecture and every field the engine resolved', async () => {
    const m = await Model.create({ model_type: 'qwen3', vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2 });
    await m.save(path.join(tmp, 'resolved'), { dtype: 'BF16' });
    const config = JSON.parse(fs.readFileSync(path.join(tmp, 'resolved', 'config.json'), 'utf8'));
    // Qwen3Config's head_dim default (128) and the other defaults, written out so no library's defaults can differ.
    expect(config).toMatchObject({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 128, num_key_value_heads: 2, tie_word_embeddings: false, rms_norm_eps: 1e-6, rope_theta: 10000, torch_dtype: 'bfloat16' });
  });

  it('shards the weights above a size with an index, in F32 and BF16, and they load back', async () => {
    const m = await Model.load(qwen3Dir, { threads: 2 });
    const want = await m.forward(tokens, { batch: 1, seqLen: 24 });
    const dir = path.join(tmp, 'sharded');
    await m.save(dir, { maxShardBytes: 100_000 });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))].sort();
    expect(shards.length).toBeGreaterThan(2);
    expect(shards.every((f, i) => f === `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`)).toBe(true);
    let total = 0;
    for (const f of shards) {
      const s = readSafetensors(fs.readFileSync(path.join(dir, f)));
      expect(s.metadata.format).toBe('pt');
      for (const [name, t] of Object.entries(s.tensors)) {
        expect(index.weight_map[name]).toBe(f);
        total += 4 * t.shape.reduce((a, b) => a * b, 1);
      }
    }
    expect(index.metadata.total_size).toBe(total);
    expect(Object.keys(index.weight_map).sort()).toEqual(Object.keys(await m.weights('base')).sort());
    expect(Array.from(await (await Model.load(dir)).forward(tokens, { batch: 1, seqLen: 24 }))).toEqual(Array.from(want));

    await m.save(dir, { dtype: 'BF16', maxShardBytes: 100_000 });
    expect(relErr(await (await Model.load(dir)).forward(tokens, { batch: 1, seqLen: 24 }), want)).toBeLessThan(2e-2);
    // Cut by a block size that splits every tensor, the same shards.
    await m.save(dir);
    shardWeights(dir, 100_000, 1000);
    expect(Array.from(await (await Model.load(dir)).forward(tokens, { batch: 1, seqLen: 24 }))).toEqual(Array.from(want));
    // Saved again whole: the shards and their index go, so nothing points at old weights.
    await m.save(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(Array.from(await (await Model.load(dir)).forward(tokens, { batch: 1, seqLen: 24 }))).toEqual(Array.from(want));
  });

  it.each(['qwen2-tiny-lora', 'qwen2-tiny-dora'])('writes adapters as peft wrote %s: names, shapes, values and config', async (name) => {
    const fixture = path.join(fixturesDir, name);
    const m = await Model.load(fixture, { threads: 2 });
    await m.loadAdapters(fixture);
    const dir = path.join(tmp, name);
    await m.saveAdapters(dir, { baseModel: 'Qwen/Qwen2-0.5B' });
    const ours = readSafetensors(fs.readFileSync(path.join(dir, 'adapter_model.safetensors')));
    const theirs = readSafetensors(fs.readFileSync(path.join(fixture, 'adapter_model.safetensors')));
    expect(Object.keys(ours.tensors).sort()).toEqual(Object.keys(theirs.tensors).sort());
    expect(ours.metadata.format).toBe(theirs.metadata.format);
    for (const [k, t] of Object.entries(theirs.tensors)) {
      expect(ours.tensors[k].shape).toEqual(t.shape);
      expect(Array.from(ours.tensors[k].data)).toEqual(Array.from(t.data));
    }
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject(JSON.parse(fs.readFileSync(path.join(fixture, 'adapter_config.json'), 'utf8')));
    expect(config).toMatchObject({ base_model_name_or_path: 'Qwen/Qwen2-0.5B', inference_mode: true, fan_in_fan_out: false });
  });
});
