// config.json to the engine's shape: each family's defaults, and a refusal naming the field for
// every config the engine would run differently from transformers.
import { engineConfig, MODEL_PRESETS } from '@temper/native';

// Qwen3-0.6B's config.json, as the hub has it.
const qwen3 = MODEL_PRESETS['qwen3-0.6b'].config;

describe('engineConfig', () => {
  it('reads Qwen3-0.6B: head_dim apart from hidden / heads, q/k norms, no biases', () => {
    expect(engineConfig(qwen3)).toMatchObject({ hiddenSize: 1024, numHeads: 16, numKvHeads: 8, headDim: 128, qkNorm: true, qkvBias: false, oBias: false, tieWordEmbeddings: true });
  });

  it('takes each family\'s defaults and biases', () => {
    const { head_dim: _, ...noHeadDim } = qwen3;
    expect(engineConfig(noHeadDim).headDim).toBe(128); // Qwen3Config's default, not 1024 / 16
    expect(engineConfig({ ...noHeadDim, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] })).toMatchObject({ headDim: 64, qkvBias: true, oBias: false, qkNorm: false });
    expect(engineConfig({ ...qwen3, attention_bias: true })).toMatchObject({ qkvBias: true, oBias: true });
    expect(engineConfig({ ...noHeadDim, model_type: 'llama', architectures: undefined, attention_bias: true, mlp_bias: true })).toMatchObject({ headDim: 64, qkvBias: true, oBias: true, mlpBias: true, qkNorm: false });
    // Mistral without a window (v0.2 and later) is Llama without biases.
    expect(engineConfig({ ...noHeadDim, model_type: 'mistral', architectures: ['MistralForCausalLM'], attention_bias: true })).toMatchObject({ qkvBias: false, oBias: false, mlpBias: false });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['Gemma 2', { model_type: 'gemma2' }, /model_type "gemma2" is not supported \(logit soft-capping.*\): the engine runs "llama", "mistral", "qwen2", "qwen3"/],
    ['Gemma 3', { model_type: 'gemma3_text' }, /model_type "gemma3_text" is not supported \(sliding-window layers/],
    ['Mixtral', { model_type: 'mixtral' }, /model_type "mixtral" is not supported \(mixture-of-experts MLP\)/],
    ['Qwen3-MoE', { model_type: 'qwen3_moe' }, /model_type "qwen3_moe" is not supported \(mixture-of-experts MLP\)/],
    ['an unknown family', { model_type: 'gpt2' }, /model_type "gpt2" is not supported: the engine runs/],
    ['no model_type', { model_type: undefined }, /model_type undefined is not supported/],
    ['experts under a supported type', { num_experts: 8 }, /num_experts 8: mixture-of-experts layers are not supported/],
    ['another head', { architectures: ['Qwen3ForSequenceClassification'] }, /architectures \["Qwen3ForSequenceClassification"\] is not supported: a qwen3 model must be \["Qwen3ForCausalLM"\]/],
    ['another family\'s class', { architectures: ['Qwen2ForCausalLM'] }, /a qwen3 model must be \["Qwen3ForCausalLM"\]/],
    ['Qwen sliding window in use', { use_sliding_window: true, sliding_window: 4096 }, /use_sliding_window is true: sliding-window attention is not supported/],
    ['Mistral v0.1\'s window', { model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 }, /sliding_window 4096 applies below max_position_embeddings \(40960\)/],
    ['GELU', { hidden_act: 'gelu_pytorch_tanh' }, /hidden_act must be "silu" \(got "gelu_pytorch_tanh"\)/],
    ['YaRN', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling.rope_type "yarn" is not supported \(linear and llama3 are\)/],
    ['partial rotary', { partial_rotary_factor: 0.5 }, /partial_rotary_factor 0.5: only full rotary embedding/],
    ['soft-capping', { final_logit_softcapping: 30 }, /final_logit_softcapping is set: logit soft-capping is not supported/],
    ['an odd head_dim', { head_dim: 127 }, /head_dim must be even/],
  ])('refuses %s, naming the field', (_, over, message) => {
    expect(() => engineConfig({ ...qwen3, ...over })).toThrow(message);
  });

  it('accepts what the windows fields say when no window applies', () => {
    expect(() => engineConfig({ ...qwen3, use_sliding_window: false, sliding_window: 4096 })).not.toThrow();
    expect(() => engineConfig({ ...qwen3, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: null })).not.toThrow();
    expect(() => engineConfig({ ...qwen3, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 40960 })).not.toThrow();
  });
});
