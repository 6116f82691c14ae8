// temper init-model and temper export: Hugging Face model directories in and out of Temper.
//   init-model --like <model> --out <dir> [--tokenizer <dir>] [shape options] [--seed N] [--dtype bf16|f32]
//   export <checkpoint|dir> <out> [--adapter-only] [--base-model NAME] [--dtype bf16|f32] [--max-shard-size 5GB] [--endpoint host:port]
import { Dtype, MODEL_PRESETS } from '@temper/native';
import { parseArgs } from 'node:util';
import { exportCheckpoint } from '../models/export';
import { initModel, ShapeOverrides } from '../models/init-model';

export const initModelUsage = `temper init-model --like <model> --out <dir> [options]

  A Hugging Face model directory with the shape of a released model and random weights
  (the engine's initialisation), to measure memory and speed before bringing real weights.
  --like M              ${Object.entries(MODEL_PRESETS).map(([k, p]) => `${k} (${p.repo})`).join(', ')}
  --out DIR             where to write it (must not exist or be empty)
  --tokenizer DIR       copy tokenizer.json, tokenizer_config.json, ... (and generation_config.json) from DIR
  --hidden-size N, --intermediate-size N, --layers N, --heads N, --kv-heads N, --head-dim N,
  --vocab-size N, --max-positions N
                        change the shape (default: the released model's)
  --seed N              (0)   --dtype bf16|f32 (bf16, as released)   --max-shard-size SIZE (5GB)
  --json                print the result as one JSON object
`;

export const exportUsage = `temper export <checkpoint|dir> <out> [options]

  Writes a checkpoint (an id, id prefix or tag in the store, or a directory) as a Hugging Face
  model directory transformers loads as it is; adapters an SFT stage kept are merged in.
  --adapter-only        write the kept adapters as a PEFT adapter directory instead
  --base-model NAME     adapter_config.json's base_model_name_or_path (a hub name or a path)
  --dtype bf16|f32      (f32)   --max-shard-size SIZE (5GB)   --endpoint host:port   --json
`;

const shapeFlags: Record<string, keyof ShapeOverrides> = {
  'hidden-size': 'hidden_size',
  'intermediate-size': 'intermediate_size',
  layers: 'num_hidden_layers',
  heads: 'num_attention_heads',
  'kv-heads': 'num_key_value_heads',
  'head-dim': 'head_dim',
  'vocab-size': 'vocab_size',
  'max-positions': 'max_position_embeddings',
};

export async function initModelCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      like: { type: 'string' },
      out: { type: 'string' },
      tokenizer: { type: 'string' },
      seed: { type: 'string' },
      dtype: { type: 'string' },
      'max-shard-size': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
      ...Object.fromEntries(Object.keys(shapeFlags).map((k) => [k, { type: 'string' as const }])),
    },
  });
  const v = values as Record<string, string | boolean | undefined>;
  if (v.help || !v.like || !v.out) {
    out.write(initModelUsage);
    return v.help ? 0 : 2;
  }
  const shape: ShapeOverrides = {};
  for (const [flag, field] of Object.entries(shapeFlags)) if (v[flag] !== undefined) shape[field] = positive(v[flag] as string, `--${flag}`);
  const r = await initModel({
    like: v.like as string,
    out: v.out as string,
    tokenizer: v.tokenizer as string | undefined,
    shape,
    seed: v.seed === undefined ? 0 : positive(v.seed as string, '--seed', 0),
    dtype: dtype(v.dtype as string | undefined, 'BF16'),
    maxShardBytes: v['max-shard-size'] === undefined ? undefined : size(v['max-shard-size'] as string),
  });
  const c = r.config;
  out.write(
    v.json
      ? JSON.stringify(r) + '\n'
      : `wrote ${r.dir}: ${r.like}-shaped ${c.model_type}, ${(r.parameters / 1e6).toFixed(1)}M parameters (vocab ${c.vocab_size}, hidden ${c.hidden_size}, ${c.num_hidden_layers} layers), ${r.files.length} files, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(1)} s\n`,
  );
  return 0;
}

export async function exportCommand(args: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'adapter-only': { type: 'boolean' },
      'base-model': { type: 'string' },
      dtype: { type: 'string' },
      'max-shard-size': { type: 'string' },
      endpoint: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help || positionals.length !== 2) {
    out.write(exportUsage);
    return values.help ? 0 : 2;
  }
  const r = await exportCheckpoint(positionals[0], positionals[1], {
    adapterOnly: values['adapter-only'],
    baseModel: values['base-model'],
    dtype: dtype(values.dtype, 'F32'),
    maxShardBytes: values['max-shard-size'] === undefined ? undefined : size(values['max-shard-size']),
    endpoint: values.endpoint,
  });
  out.write(values.json ? JSON.stringify(r) + '\n' : `wrote ${r.dir}: ${r.kind === 'adapter' ? 'a PEFT adapter' : `a ${r.merged ? 'merged ' : ''}model`} (${r.files.join(', ')})${r.tokenizer === 'byte' ? "; its tokenizer is Temper's byte tokenizer, which transformers cannot load" : ''}\n`);
  return 0;
}

function positive(s: string, name: string, min = 1): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, not ${JSON.stringify(s)}`);
  return n;
}

function dtype(s: string | undefined, fallback: Dtype): Dtype {
  if (s === undefined) return fallback;
  const d = s.toLowerCase();
  if (d === 'bf16' || d === 'bfloat16') return 'BF16';
  if (d === 'f32' || d === 'fp32' || d === 'float32') return 'F32';
  throw new Error(`--dtype must be bf16 or f32, not ${JSON.stringify(s)}`);
}

/** "5GB", "500MB", "2GiB" or a number of bytes. */
export function size(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(s.trim());
  if (!m) throw new Error(`--max-shard-size must be a size such as 5GB or 500MB, not ${JSON.stringify(s)}`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const scale: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30 };
  const n = Number(m[1]) * scale[unit];
  if (!(n >= 1)) throw new Error(`--max-shard-size must be at least one byte, not ${JSON.stringify(s)}`);
  return Math.floor(n);
}
