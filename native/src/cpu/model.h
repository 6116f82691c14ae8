// The decoder: parameters under their Hugging Face names, the training pass that keeps
// activations for one backward, the optimizer, adapters and generation. One Model is used by
// one call at a time (the addon holds `mu` around every call).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/buffer.h"
#include "cpu/kernels.h"
#include "cpu/safetensors.h"
#include "cpu/threadpool.h"

namespace temper {

struct Config {
  int64_t vocab = 0, hidden = 0, inter = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, max_pos = 0;
  double rope_theta = 10000, eps = 1e-6;
  RopeScaling rope_scaling;
  bool tied = false, qkv_bias = false, o_bias = false, mlp_bias = false;
};

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data, grad, m, v;  // grad, m, v stay empty unless the tensor trains
  int64_t numel() const;
  void allocate(std::vector<int64_t> s);
  float* g() { return grad.empty() ? nullptr : grad.data(); }
};

struct Adapter {
  int64_t r = 0;
  float scale = 0;
  bool dora = false;
  Tensor A, B, mag;  // A [r, in], B [out, r], mag [out] (DoRA only)
};

// What a projection's forward keeps for its backward when it has an adapter.
struct LinearSave {
  Buf ax;                // [N, r]   A x
  Buf z, norm, colscale; // DoRA: [N, out] W x + s B A x, ‖W + s B A‖ per row, mag / norm
};

struct Linear {
  std::string name;  // e.g. model.layers.0.self_attn.q_proj
  int64_t in = 0, out = 0;
  Tensor w, b;  // b empty without bias
  std::unique_ptr<Adapter> lora;

  // y[N,out] = x[N,in] W^T + b, plus the adapter's term.   (save may be null)
  void forward(ThreadPool& pool, float* y, const float* x, int64_t N, LinearSave* save) const;
  // dx[N,in] (+)= ..., and gradients of whatever in this projection trains.
  void backward(ThreadPool& pool, float* dx, bool accumulate, const float* dy, const float* x, int64_t N,
                const LinearSave& save);
  // W + s B A, scaled per row by mag / norm for DoRA: the weight an adapter-free model would need.
  std::vector<float> merged_weight(ThreadPool& pool) const;
};

struct Layer {
  Tensor ln1, ln2;
  Linear q, k, v, o, gate, up, down;
  Linear* linears[7] = {&q, &k, &v, &o, &gate, &up, &down};
};

struct AdapterSpec {
  int64_t r = 8;
  double alpha = 16;
  bool rslora = false, dora = false;
  std::vector<std::string> targets;  // q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj
};

struct SamplingParams {
  int64_t max_new = 16, top_k = 0, n = 1;
  double temperature = 1, top_p = 1;
  uint64_t seed = 0;
  std::vector<int32_t> stop;
};

struct Completion {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string finish;  // "stop" or "length"
};

struct Activations;

struct Named {
  std::string name;
  Tensor* t;
};

class Model {
 public:
  Model(const Config& cfg, int threads);
  ~Model();

  Config cfg;
  Tensor embed, norm, lm_head;  // lm_head empty when tied
  std::vector<Layer> layers;
  ThreadPool pool;
  RopeTable rope;
  std::mutex mu;
  int64_t steps = 0;  // AdamW steps taken (torch's `step` state)

  // --- model.cc ---
  void init_random(uint64_t seed);
  void load(std::vector<SafetensorsFile>& files);
  std::vector<Named> base_params();  // Hugging Face names, lm_head omitted when tied
  std::vector<Named> trainable();    // the adapters' tensors when there are any, else base_params
  bool has_adapters() const;
  void refresh_trainable();          // gives trainable tensors gradients, frees the others'
  void check_tokens(const int32_t* tokens, int64_t n, const char* what) const;
  // Refuses a call whose buffers would not fit in this machine's memory (rather than letting the
  // kernel kill the process when the pages are touched).
  static void check_memory(double bytes, const std::string& what);

  // --- forward.cc ---
  void forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits);
  // logprob[B, T-1] (and entropy), rows past lengths[b]-1 are 0; keeps the activations for
  // backward unless told no backward will follow.
  void logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob, float* entropy,
                bool keep);
  void backward(const float* dlogprob);
  int64_t pending_rows() const;  // B*(T-1) of the kept batch, 0 when none

  // --- optimizer.cc ---
  void zero_grad();
  double step(double lr, double b1, double b2, double eps, double wd, double max_norm);
  std::vector<uint8_t> optimizer_state();
  void load_optimizer_state(SafetensorsFile& f);

  // --- lora.cc ---
  void add_adapters(const AdapterSpec& spec, uint64_t seed);
  void load_adapters(const AdapterSpec& spec, SafetensorsFile& f);
  std::vector<Named> adapter_params();  // PEFT names
  void merge_adapters();
  std::vector<uint8_t> export_weights(DType dtype, bool merged);

  // --- generate.cc ---
  std::vector<Completion> generate(const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp);

 private:
  std::unique_ptr<Activations> acts_;
  void run_forward(Activations& a);
};

void validate_config(const Config& c);

}  // namespace temper
