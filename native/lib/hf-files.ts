// What makes a directory one that Hugging Face transformers loads as it is: config.json naming
// the architecture, with every field the engine resolved written out (so no library default can
// read it differently), and the weights as model.safetensors or, above a size, as shards with
// model.safetensors.index.json, tensors under their HF names and the "pt" format transformers
// asks of a safetensors header.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Dtype } from './addon';
import { ARCHITECTURES, engineConfig, HfConfig } from './config';

export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
const SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** config.json for weights saved in `dtype`: the config as given, its architecture, and the engine's reading of it. */
export function hfConfigFile(config: HfConfig, dtype: Dtype): Record<string, unknown> {
  const e = engineConfig(config);
  return {
    ...config,
    architectures: [ARCHITECTURES[config.model_type]],
    head_dim: e.headDim,
    num_key_value_heads: e.numKvHeads,
    max_position_embeddings: e.maxPositions,
    rope_theta: e.ropeTheta,
    rms_norm_eps: e.rmsNormEps,
    tie_word_embeddings: e.tieWordEmbeddings,
    hidden_act: 'silu',
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32',
  };
}

/** Removes the weight files of `dir` (model.safetensors, shards, their index). */
export function clearWeights(dir: string): void {
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (f === WEIGHTS_FILE || f === WEIGHTS_INDEX_FILE || SHARD.test(f)) fs.rmSync(path.join(dir, f));
  }
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * Cuts dir/model.safetensors into shards of at most maxShardBytes of tensor data each (a larger
 * tensor gets a shard of its own, as transformers does) with their index, when it holds more;
 * the whole file then goes. The bytes are copied file to file a block at a time: a model far
 * larger than a JavaScript buffer can hold is sharded too. Returns the weight files.
 */
export function shardWeights(dir: string, maxShardBytes: number, blockBytes = 16 << 20): string[] {
  const whole = path.join(dir, WEIGHTS_FILE);
  const fd = fs.openSync(whole, 'r');
  let names: string[];
  try {
    const lead = Buffer.alloc(8);
    fs.readSync(fd, lead, 0, 8, 0);
    const headerLength = Number(lead.readBigUInt64LE(0));
    const bodyStart = 8 + headerLength;
    const bodyLength = fs.fstatSync(fd).size - bodyStart;
    if (bodyLength <= maxShardBytes) return [WEIGHTS_FILE];
    const headerBytes = Buffer.alloc(headerLength);
    fs.readSync(fd, headerBytes, 0, headerLength, 8);
    const header = JSON.parse(headerBytes.toString('utf8')) as Record<string, Entry>;
    const shards: [string, Entry][][] = [[]];
    let filled = 0;
    for (const [name, e] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const size = e.data_offsets[1] - e.data_offsets[0];
      if (filled > 0 && filled + size > maxShardBytes) {
        shards.push([]);
        filled = 0;
      }
      shards[shards.length - 1].push([name, e]);
      filled += size;
    }
    names = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
    const weightMap: Record<string, string> = {};
    const block = Buffer.alloc(blockBytes);
    shards.forEach((tensors, i) => {
      const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
      let offset = 0;
      for (const [name, e] of tensors) {
        const size = e.data_offsets[1] - e.data_offsets[0];
        h[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + size] };
        offset += size;
        weightMap[name] = names[i];
      }
      const json = Buffer.from(JSON.stringify(h), 'utf8');
      const padded = json.length + ((8 - (json.length % 8)) % 8); // the data starts 8-byte aligned
      const shardLead = Buffer.alloc(8 + padded, ' ');
      shardLead.writeBigUInt64LE(BigInt(padded), 0);
      json.copy(shardLead, 8);
      const out = fs.openSync(path.join(dir, names[i]), 'w');
      try {
        fs.writeSync(out, shardLead);
        for (const [, e] of tensors) {
          for (let at = e.data_offsets[0]; at < e.data_offsets[1]; ) {
            const n = fs.readSync(fd, block, 0, Math.min(block.length, e.data_offsets[1] - at), bodyStart + at);
            if (n === 0) throw new Error(`${whole} ends inside tensor data`);
            fs.writeSync(out, block, 0, n);
            at += n;
          }
        }
      } finally {
        fs.closeSync(out);
      }
    });
    fs.writeFileSync(path.join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: { total_size: bodyLength }, weight_map: weightMap }, null, 2));
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(whole);
  return [...names, WEIGHTS_INDEX_FILE];
}
