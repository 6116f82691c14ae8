// Hugging Face config.json (Llama, Mistral, Qwen2, Qwen3) -> the engine's shape, with errors naming
// the field. A config the engine would run differently from transformers is refused, never guessed.
import type { EngineConfig, RopeScaling } from './addon';

/** The model families the engine runs: config.json's model_type and the one architecture class it may name. */
export const ARCHITECTURES = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
} as const;

export type ModelType = keyof typeof ARCHITECTURES;

/** A Hugging Face config.json of a family the engine runs (known fields; others are kept as given). */
export interface HfConfig {
  model_type: ModelType;
  architectures?: string[];
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

// What sets a known but unsupported model_type apart, so the refusal says why.
const UNSUPPORTED: Record<string, string> = {
  gemma: 'GeGLU MLP, scaled embeddings and (1 + w) RMSNorm',
  gemma2: 'logit soft-capping, sliding-window layers and extra norms',
  gemma3: 'sliding-window layers, extra norms and a second RoPE base',
  gemma3_text: 'sliding-window layers, extra norms and a second RoPE base',
  mixtral: 'mixture-of-experts MLP',
  qwen2_moe: 'mixture-of-experts MLP',
  qwen3_moe: 'mixture-of-experts MLP',
  deepseek_v2: 'multi-head latent attention and mixture-of-experts MLP',
  deepseek_v3: 'multi-head latent attention and mixture-of-experts MLP',
  phi3: 'fused qkv and gate_up projections',
};

const supported = () => Object.keys(ARCHITECTURES).map((t) => JSON.stringify(t)).join(', ');

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

function modelType(c: Record<string, unknown>): ModelType {
  const type = c.model_type;
  if (typeof type === 'string' && type in ARCHITECTURES) return type as ModelType;
  const why = typeof type === 'string' && UNSUPPORTED[type] ? ` (${UNSUPPORTED[type]})` : '';
  fail('model_type', `${JSON.stringify(type)} is not supported${why}: the engine runs ${supported()}`);
}

/** Refuses what this family's transformers class would compute and the engine would not. */
function checkUnsupported(c: Record<string, unknown>, type: ModelType, maxPositions: number): void {
  const arch = c.architectures;
  if (arch !== undefined) {
    if (!Array.isArray(arch) || arch.length !== 1 || arch[0] !== ARCHITECTURES[type]) {
      fail('architectures', `${JSON.stringify(arch)} is not supported: a ${type} model must be ["${ARCHITECTURES[type]}"]`);
    }
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `must be "silu" (got ${JSON.stringify(act)})`);
  for (const field of ['num_experts', 'num_local_experts', 'n_routed_experts']) {
    const n = c[field];
    if (n !== undefined && n !== null && n !== 0) fail(field, `${JSON.stringify(n)}: mixture-of-experts layers are not supported`);
  }
  // Qwen2 / Qwen3 keep the window fields but use them only with use_sliding_window; Mistral's
  // window applies whenever it is shorter than the sequences can be.
  if (c.use_sliding_window === true) fail('use_sliding_window', 'is true: sliding-window attention is not supported (full attention only)');
  const window = c.sliding_window;
  if (type === 'mistral' && window !== undefined && window !== null && !(typeof window === 'number' && window >= maxPositions)) {
    fail('sliding_window', `${JSON.stringify(window)} applies below max_position_embeddings (${maxPositions}): sliding-window attention is not supported`);
  }
  const partial = c.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1) fail('partial_rotary_factor', `${JSON.stringify(partial)}: only full rotary embedding (1) is supported`);
  for (const field of ['attn_logit_softcapping', 'final_logit_softcapping']) {
    if (c[field] !== undefined && c[field] !== null) fail(field, 'is set: logit soft-capping is not supported');
  }
}

/** Checks a Hugging Face config and derives the engine's shape from it (HF defaults where a field is absent). */
export function engineConfig(raw: unknown): EngineConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('model config must be a JSON object');
  const c = raw as Record<string, unknown>;
  const type = modelType(c);
  const maxPositions = int(c, 'max_position_embeddings', 4096);
  checkUnsupported(c, type, maxPositions);
  const hidden = int(c, 'hidden_size');
  const heads = int(c, 'num_attention_heads');
  const kv = int(c, 'num_key_value_heads', heads);
  if (heads % kv !== 0) fail('num_key_value_heads', `(${kv}) must divide num_attention_heads (${heads})`);
  // Qwen3Config defaults head_dim to 128; the others derive it from the hidden size.
  if (c.head_dim == null && type !== 'qwen3' && hidden % heads !== 0) {
    fail('hidden_size', `(${hidden}) must be a multiple of num_attention_heads (${heads}) when head_dim is absent`);
  }
  const headDim = int(c, 'head_dim', type === 'qwen3' ? 128 : hidden / heads);
  if (headDim % 2 !== 0) fail('head_dim', `must be even for rotary embedding (got ${headDim})`);
  // Qwen2 always has q/k/v biases and none on o_proj; Llama's and Qwen3's attention_bias put one
  // on all four; Mistral has none.
  const allFour = (type === 'llama' || type === 'qwen3') && bool(c, 'attention_bias', false);
  return {
    vocabSize: int(c, 'vocab_size'),
    hiddenSize: hidden,
    intermediateSize: int(c, 'intermediate_size'),
    numLayers: int(c, 'num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kv,
    headDim,
    maxPositions,
    ropeTheta: num(c, 'rope_theta', 10000),
    ropeScaling: ropeScaling(c.rope_scaling),
    rmsNormEps: num(c, 'rms_norm_eps', 1e-6),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
    qkvBias: type === 'qwen2' || allFour,
    oBias: allFour,
    mlpBias: type === 'llama' && bool(c, 'mlp_bias', false),
    qkNorm: type === 'qwen3',
  };
}
