// The shapes of released models, as their config.json and generation_config.json on the Hugging
// Face hub give them: `temper init-model --like <name>` writes a model of that shape with random
// weights, so memory and speed can be measured before the real weights are at hand.
import type { HfConfig } from './config';

export interface ModelPreset {
  /** The hub repository the shape is taken from. */
  repo: string;
  config: HfConfig;
  generation: Record<string, unknown>;
}

export const MODEL_PRESETS: Record<string, ModelPreset> = {
  'qwen3-0.6b': {
    repo: 'Qwen/Qwen3-0.6B',
    config: {
      architectures: ['Qwen3ForCausalLM'],
      model_type: 'qwen3',
      vocab_size: 151936,
      hidden_size: 1024,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      max_position_embeddings: 40960,
      rope_theta: 1000000,
      rope_scaling: null,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      attention_bias: false,
      attention_dropout: 0,
      hidden_act: 'silu',
      use_sliding_window: false,
      sliding_window: null,
      max_window_layers: 28,
      initializer_range: 0.02,
      bos_token_id: 151643,
      eos_token_id: 151645,
      torch_dtype: 'bfloat16',
    },
    generation: { bos_token_id: 151643, pad_token_id: 151643, eos_token_id: [151645, 151643], do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.95 },
  },
  'qwen2.5-0.5b': {
    repo: 'Qwen/Qwen2.5-0.5B',
    config: {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      vocab_size: 151936,
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      attention_dropout: 0,
      hidden_act: 'silu',
      use_sliding_window: false,
      sliding_window: 32768,
      max_window_layers: 24,
      initializer_range: 0.02,
      bos_token_id: 151643,
      eos_token_id: 151643,
      torch_dtype: 'bfloat16',
    },
    generation: { bos_token_id: 151643, eos_token_id: 151643, do_sample: false, max_new_tokens: 2048 },
  },
  'llama-3.2-1b': {
    repo: 'meta-llama/Llama-3.2-1B',
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 128256,
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      max_position_embeddings: 131072,
      rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      rms_norm_eps: 1e-5,
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      attention_dropout: 0,
      hidden_act: 'silu',
      initializer_range: 0.02,
      bos_token_id: 128000,
      eos_token_id: 128001,
      torch_dtype: 'bfloat16',
    },
    generation: { bos_token_id: 128000, eos_token_id: 128001, do_sample: true, temperature: 0.6, top_p: 0.9 },
  },
};
