// A Hugging Face model directory with the shape of a released model and the engine's random
// initialisation: what a user measures memory and speed on before bringing real weights, and what
// the tests train at a size CI affords (the real tokenizer and vocabulary, a small body).
import { summarizeModelDir } from '@temper/checkpoint-client';
import { HfConfig, Model, MODEL_PRESETS } from '@temper/native';
import type { Dtype } from '@temper/native';
import { createTokenizer, GENERATION_CONFIG_FILE, HF_TOKENIZER_FILE, HF_TOKENIZER_FILES } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Shape fields a user may change, by their config.json names. */
export type ShapeOverrides = Partial<
  Record<'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'num_key_value_heads' | 'head_dim' | 'max_position_embeddings', number>
>;

export interface InitModelOptions {
  like: string;
  out: string;
  /** A directory with tokenizer.json (and tokenizer_config.json, generation_config.json, ...) to copy in. */
  tokenizer?: string;
  shape?: ShapeOverrides;
  seed?: number;
  dtype?: Dtype;
  maxShardBytes?: number;
  threads?: number;
}

export interface InitModelResult {
  dir: string;
  like: string;
  repo: string;
  parameters: number;
  files: string[];
  bytes: number;
  seconds: number;
  config: HfConfig;
}

export async function initModel(o: InitModelOptions): Promise<InitModelResult> {
  const t0 = performance.now();
  const preset = MODEL_PRESETS[o.like];
  if (!preset) throw new Error(`--like ${JSON.stringify(o.like)} is not a known model (known: ${Object.keys(MODEL_PRESETS).join(', ')})`);
  if (fs.existsSync(o.out) && fs.readdirSync(o.out).length > 0) throw new Error(`${o.out} is not empty: init-model writes a new directory`);
  const config: HfConfig = { ...preset.config, ...o.shape };
  for (const k of ['bos_token_id', 'eos_token_id'] as const) {
    const ids = [config[k]].flat() as number[];
    if (ids.some((id) => id >= config.vocab_size)) throw new Error(`vocab_size ${config.vocab_size} is too small for ${k} ${JSON.stringify(config[k])} of ${o.like}`);
  }
  if (o.tokenizer) checkTokenizer(o.tokenizer, config.vocab_size);
  const model = await Model.create(config, { seed: o.seed ?? 0, threads: o.threads });
  await model.save(o.out, { dtype: o.dtype ?? 'BF16', maxShardBytes: o.maxShardBytes });
  if (o.tokenizer) {
    for (const name of [...HF_TOKENIZER_FILES, GENERATION_CONFIG_FILE]) {
      if (fs.existsSync(path.join(o.tokenizer, name))) fs.copyFileSync(path.join(o.tokenizer, name), path.join(o.out, name));
    }
  }
  // The released model's own, unless the tokenizer's directory brought one.
  if (!fs.existsSync(path.join(o.out, GENERATION_CONFIG_FILE))) {
    fs.writeFileSync(path.join(o.out, GENERATION_CONFIG_FILE), JSON.stringify(preset.generation, null, 2));
  }
  const files = fs.readdirSync(o.out).sort();
  const bytes = files.reduce((n, f) => n + fs.statSync(path.join(o.out, f)).size, 0);
  const parameters = (await summarizeModelDir(o.out, files))?.parameters ?? 0;
  return { dir: o.out, like: o.like, repo: preset.repo, parameters, files, bytes, seconds: (performance.now() - t0) / 1000, config };
}

// Every id the tokenizer can give must have a row of the embedding.
function checkTokenizer(dir: string, vocab: number): void {
  if (!fs.existsSync(path.join(dir, HF_TOKENIZER_FILE))) throw new Error(`--tokenizer ${dir}: no ${HF_TOKENIZER_FILE} there (a Hugging Face tokenizer directory)`);
  const size = createTokenizer({ kind: 'huggingface', path: dir }).vocabSize;
  if (size > vocab) throw new Error(`--tokenizer ${dir} has ${size} tokens, more than vocab_size ${vocab}`);
}
