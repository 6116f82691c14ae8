// Hugging Face config.json (Llama / Qwen2) -> the engine's shape, with errors naming the field.
import type { EngineConfig, RopeScaling } from './addon';

/** A Hugging Face config.json of the Llama or Qwen2 family (known fields; others are kept as given). */
export interface HfConfig {
  model_type: 'llama' | 'qwen2';
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
  max_position_embeddings?: number;
  rope_theta?: number;
  rms_norm_eps?: number;
  tie_word_embeddings?: boolean;
  attention_bias?: boolean;
  mlp_bias?: boolean;
  hidden_act?: string;
  rope_scaling?: unknown;
  [key: string]: unknown;
}

function fail(field: string, why: string): never {
  throw new Error(`model config: ${field} ${why}`);
}

function int(c: Record<string, unknown>, field: string, fallback?: number): number {
  const v = c[field] ?? fallback;
  if (v === undefined) fail(field, 'is required');
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(field, `must be a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

function num(c: Record<string, unknown>, field: string, fallback?: number, label = field): number {
  const v = c[field] ?? fallback;
  if (v === undefined) fail(label, 'is required');
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(label, `must be a positive number (got ${JSON.stringify(v)})`);
  return v;
}

function bool(c: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const v = c[field] ?? fallback;
  if (typeof v !== 'boolean') fail(field, `must be true or false (got ${JSON.stringify(v)})`);
  return v;
}

function ropeScaling(raw: unknown): RopeScaling {
  const none: RopeScaling = { kind: 'none', factor: 1, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
  if (raw === undefined || raw === null) return none;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('rope_scaling', 'must be an object or null');
  const s = raw as Record<string, unknown>;
  const type = s.rope_type ?? s.type;
  if (type === 'default') return none;
  if (type !== 'linear' && type !== 'llama3') {
    fail('rope_scaling.rope_type', `${JSON.stringify(type)} is not supported (linear and llama3 are)`);
  }
  const factor = num(s, 'factor', undefined, 'rope_scaling.factor');
  if (type === 'linear') return { ...none, kind: 'linear', factor };
  return {
    kind: 'llama3',
    factor,
    lowFreqFactor: num(s, 'low_freq_factor', 1, 'rope_scaling.low_freq_factor'),
    highFreqFactor: num(s, 'high_freq_factor', 4, 'rope_scaling.high_freq_factor'),
    originalMaxPositions: num(s, 'original_max_position_embeddings', 8192, 'rope_scaling.original_max_position_embeddings'),
  };
}

/** Checks a Hugging Face config and derives the engine's shape from it (HF defaults where a field is absent). */
export function engineConfig(raw: unknown): EngineConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('model config must be a JSON object');
  const c = raw as Record<string, unknown>;
  const type = c.model_type;
  if (type !== 'llama' && type !== 'qwen2') fail('model_type', `must be "llama" or "qwen2" (got ${JSON.stringify(type)})`);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `must be "silu" (got ${JSON.stringify(act)})`);
  const hidden = int(c, 'hidden_size');
  const heads = int(c, 'num_attention_heads');
  const kv = int(c, 'num_key_value_heads', heads);
  if (heads % kv !== 0) fail('num_key_value_heads', `(${kv}) must divide num_attention_heads (${heads})`);
  if (c.head_dim === undefined && hidden % heads !== 0) fail('hidden_size', `(${hidden}) must be a multiple of num_attention_heads (${heads}) when head_dim is absent`);
  const headDim = int(c, 'head_dim', hidden / heads);
  if (headDim % 2 !== 0) fail('head_dim', `must be even for rotary embedding (got ${headDim})`);
  // Qwen2 always has q/k/v biases and none on o_proj; Llama's attention_bias puts one on all four.
  const llamaBias = type === 'llama' && bool(c, 'attention_bias', false);
  return {
    vocabSize: int(c, 'vocab_size'),
    hiddenSize: hidden,
    intermediateSize: int(c, 'intermediate_size'),
    numLayers: int(c, 'num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kv,
    headDim,
    maxPositions: int(c, 'max_position_embeddings', 4096),
    ropeTheta: num(c, 'rope_theta', 10000),
    ropeScaling: ropeScaling(c.rope_scaling),
    rmsNormEps: num(c, 'rms_norm_eps', 1e-6),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
    qkvBias: type === 'qwen2' || llamaBias,
    oBias: llamaBias,
    mlpBias: type === 'llama' && bool(c, 'mlp_bias', false),
  };
}
