// A checkpoint as Hugging Face ships models: a directory transformers loads as it is (config.json
// naming the architecture, safetensors under HF names, sharded above a size, the tokenizer's files
// and generation_config.json beside them), or the adapters an SFT stage kept as a PEFT adapter
// directory that peft loads onto the base model. The source is a checkpoint directory (pulled
// from the store, or any Temper or HF model directory); kept adapters are merged into a full
// export.
import { CheckpointClient, checkpointStoreAddress, pullPolicyDir } from '@temper/checkpoint-client';
import { Dtype, Model } from '@temper/native';
import { ADAPTER_DIR, ClientAuthOptions } from '@temper/service';
import { GENERATION_CONFIG_FILE, HF_TOKENIZER_FILE, HF_TOKENIZER_FILES, TOKENIZER_SPEC_FILE } from '@temper/tokenizers';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface ExportOptions {
  /** The adapters alone, as a PEFT adapter directory (the checkpoint must have kept them). */
  adapterOnly?: boolean;
  dtype?: Dtype;
  /** Shard the weights above this many bytes (transformers' default is 5 GB). */
  maxShardBytes?: number;
  /** adapter_config.json's base_model_name_or_path. */
  baseModel?: string;
  threads?: number;
}

export interface ExportResult {
  dir: string;
  kind: 'model' | 'adapter';
  /** Files written, sorted. */
  files: string[];
  /** Whether kept adapters were merged into the weights. */
  merged: boolean;
  /** The tokenizer that came along: a Hugging Face one, Temper's byte tokenizer (which transformers cannot load), or none. */
  tokenizer: 'huggingface' | 'byte' | 'none';
}

export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/** Exports checkpoint directory `src` into `out` (which must not exist or be empty). */
export async function exportModelDir(src: string, out: string, opts: ExportOptions = {}): Promise<ExportResult> {
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new Error(`${out} is not empty: export writes a new directory`);
  const adapter = path.join(src, ADAPTER_DIR);
  const hasAdapter = fs.existsSync(path.join(adapter, 'adapter_config.json'));
  const model = await Model.load(src, { threads: opts.threads });
  if (opts.adapterOnly) {
    if (!hasAdapter) {
      throw new Error(`${src} holds no adapters (${ADAPTER_DIR}/adapter_config.json): its SFT stage merged them (adapter.merge_on_export) or trained the whole model; export it without --adapter-only`);
    }
    await model.loadAdapters(adapter);
    await model.saveAdapters(out, { dtype: opts.dtype, baseModel: opts.baseModel });
  } else {
    if (hasAdapter) {
      await model.loadAdapters(adapter);
      await model.mergeAdapters();
    }
    await model.save(out, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES });
  }
  const tokenizer = copyTokenizer(src, out);
  if (!opts.adapterOnly && !fs.existsSync(path.join(out, GENERATION_CONFIG_FILE))) writeGenerationConfig(out, model.config);
  return { dir: out, kind: opts.adapterOnly ? 'adapter' : 'model', files: fs.readdirSync(out).sort(), merged: hasAdapter && !opts.adapterOnly, tokenizer };
}

/**
 * Exports a checkpoint: `ref` is a directory, or a checkpoint id, id prefix or tag in the store
 * at `endpoint` (pulled into a temporary directory, removed after).
 */
export async function exportCheckpoint(ref: string, out: string, opts: ExportOptions & { endpoint?: string; auth?: ClientAuthOptions } = {}): Promise<ExportResult & { checkpoint?: string }> {
  if (fs.existsSync(ref) && fs.statSync(ref).isDirectory()) return exportModelDir(ref, out, opts);
  const client = new CheckpointClient(checkpointStoreAddress(opts.endpoint), opts.auth);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-export-'));
  try {
    const { manifest } = await pullPolicyDir(client, ref, tmp);
    return { ...(await exportModelDir(tmp, out, opts)), checkpoint: manifest.id };
  } finally {
    client.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function copyTokenizer(src: string, out: string): ExportResult['tokenizer'] {
  for (const name of [...HF_TOKENIZER_FILES, GENERATION_CONFIG_FILE]) {
    if (fs.existsSync(path.join(src, name))) fs.copyFileSync(path.join(src, name), path.join(out, name));
  }
  if (fs.existsSync(path.join(src, HF_TOKENIZER_FILE))) return 'huggingface';
  // Temper's byte tokenizer has no Hugging Face form; its spec lets Temper read the export.
  if (!fs.existsSync(path.join(src, TOKENIZER_SPEC_FILE))) return 'none';
  fs.copyFileSync(path.join(src, TOKENIZER_SPEC_FILE), path.join(out, TOKENIZER_SPEC_FILE));
  return 'byte';
}

// The ids transformers' generate() stops at and starts from, from the config when it names them.
function writeGenerationConfig(out: string, config: Record<string, unknown>): void {
  const g: Record<string, unknown> = {};
  for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (config[k] !== undefined) g[k] = config[k];
  fs.writeFileSync(path.join(out, GENERATION_CONFIG_FILE), JSON.stringify(g, null, 2));
}
