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
 * Writes safetensors bytes (as exportWeights gives) into `dir` as model.safetensors, or as
 * shards of at most maxShardBytes of tensor data each (a larger tensor gets a shard of its own,
 * as transformers does) with their index. Weight files already in `dir` are removed first, so an
 * old index never points past the new weights.
 */
export function writeWeights(dir: string, bytes: Uint8Array, maxShardBytes = Infinity): string[] {
  clearWeights(dir);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const body = bytes.subarray(8 + headerLength);
  if (body.length <= maxShardBytes) {
    fs.writeFileSync(path.join(dir, WEIGHTS_FILE), bytes);
    return [WEIGHTS_FILE];
  }
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8')) as Record<string, Entry>;
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
  const names = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
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
    const lead = Buffer.alloc(8 + padded, ' ');
    lead.writeBigUInt64LE(BigInt(padded), 0);
    json.copy(lead, 8);
    const fd = fs.openSync(path.join(dir, names[i]), 'w');
    try {
      fs.writeSync(fd, lead);
      for (const [, e] of tensors) fs.writeSync(fd, body.subarray(e.data_offsets[0], e.data_offsets[1]));
    } finally {
      fs.closeSync(fd);
    }
  });
  fs.writeFileSync(path.join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: { total_size: body.length }, weight_map: weightMap }, null, 2));
  return [...names, WEIGHTS_INDEX_FILE];
}
