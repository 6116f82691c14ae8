// The decoder, written once against backend/ops.h: parameters under their Hugging Face names,
// the training pass that keeps activations for one backward, AdamW, adapters and generation.
// Every tensor lives in the backend's memory; the host keeps names, shapes and the step count,
// and moves values only to load, save or hand them to the caller. One Model is used by one call
// at a time (the addon holds `mu` around every call).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/buffer.h"
#include "backend/ops.h"
#include "io/safetensors.h"

namespace temper {

// The config's rope_scaling: "linear" divides every frequency by factor; "llama3" (Llama 3.1+)
// divides the low frequencies, keeps the high ones and blends those between.
struct RopeScaling {
  enum Kind { None, Linear, Llama3 } kind = None;
  double factor = 1, low_freq_factor = 1, high_freq_factor = 4, original_max_positions = 8192;
};

struct Config {
  int64_t vocab = 0, hidden = 0, inter = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, max_pos = 0;
  double rope_theta = 10000, eps = 1e-6;
  RopeScaling rope_scaling;
  bool tied = false, qkv_bias = false, o_bias = false, mlp_bias = false;
  bool qk_norm = false;  // Qwen3: each head's q and k RMS-normalised over head_dim before RoPE
};

void validate_config(const Config& c);

// One parameter: its fp32 values, and while it trains its gradient and (once it has stepped) its
// AdamW moments, all in backend memory. A base matrix also has a compute copy when the backend
// computes in bf16; products read weight(), which knows which it is.
struct Param {
  std::vector<int64_t> shape;  // empty: the parameter does not exist (a bias the config has not)
  Buffer data, compute, grad, m, v;
  // Whether it trains; its gradient is made at the first backward, step or grads() that needs it,
  // so a model that only generates (a generator, a frozen reference) holds none.
  bool trains = false;
  int64_t numel() const;
  bool exists() const { return !shape.empty(); }
  float* g() const { return grad ? grad.f() : nullptr; }
  Weight weight() const;
};

// A parameter's fp32 values: its master, or, where that was dropped (a frozen base matrix in bf16
// precision keeps only its bf16 copy), the copy widened into `tmp`.
const float* fp32_values(Backend& be, const Param& p, Buffer& tmp);

struct Named {
  std::string name;
  Param* t;
};

struct Adapter {
  int64_t r = 0;
  float scale = 0;
  bool dora = false;
  // Off: the projection computes the base alone (the frozen base as a reference policy).
  bool enabled = true;
  Param A, B, mag;  // A [r, in], B [out, r], mag [out] (DoRA only)
};

// What a projection's forward keeps for its backward when it has an adapter.
struct LinearSave {
  Buffer ax;                // [N, r]   A x
  Buffer z, norm, colscale; // DoRA: [N, out] W x + s B A x, ‖W + s B A‖ per row, mag / norm
};

// A projection with optional bias and optional PEFT adapter (linear.cc):
//   LoRA:  y = W x + b + s B (A x)
//   DoRA:  y = (mag / ‖W + s B A‖_row) * (W x + s B (A x)) + b, the norm a constant in backward (as PEFT)
struct Linear {
  std::string name;  // e.g. model.layers.0.self_attn.q_proj
  int64_t in = 0, out = 0;
  Param w, b;
  std::unique_ptr<Adapter> lora;

  // y[N,out] = x[N,in] W^T + b, plus the adapter's term. save may be null (nothing kept); mode:
  // Train or Decode, for the product with W (see Backend::gemm).
  void forward(Backend& be, float* y, const float* x, int64_t N, LinearSave* save, GemmMode mode) const;
  // dx[N,in] (+)= dy · d y / d x (sets unless accumulate; dx may be null), and the gradients of
  // whatever in this projection trains.
  void backward(Backend& be, float* dx, bool accumulate, const float* dy, const float* x, int64_t N,
                const LinearSave& save);
  // W + s B A, scaled per row by mag / norm for DoRA: the weight an adapter-free model would need.
  Buffer merged_weight(Backend& be, bool resident) const;
};

struct Layer {
  Param ln1, ln2;
  Param q_norm, k_norm;  // [head_dim], Qwen3 only (absent otherwise)
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
  // One seed per prompt, or none: prompt i then draws as prompt 0 of a call seeded prompt_seeds[i]
  // would, so its samples do not depend on its place in the batch.
  std::vector<uint64_t> prompt_seeds;
};

struct Completion {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string finish;  // "stop" or "length"
};

// cos/sin of position p and frequency i at [p * D/2 + i], inv_freq_i = theta^(-2i/D) (scaled),
// made on the host (rope.cc) and held in backend memory for the rope ops.
struct RopeTable {
  int64_t positions = 0;
  Buffer cos, sin;
};

struct Activations;
struct LayerActs;
struct LayerScratch;
struct StepPlan;
class KvCache;
class StepProfile;

class Model {
 public:
  // Declared first so that it is destroyed last: every Buffer below is its memory.
  const std::unique_ptr<Backend> backend;

  // frozen: as freeze() at once, before any weight exists, so a frozen bf16 model on the CPU is
  // made and loaded without its projections' fp32 masters (never both copies at a time).
  Model(const Config& cfg, std::unique_ptr<Backend> backend, bool frozen = false);
  ~Model();
  Backend& be() const { return *backend; }

  Config cfg;
  Param embed, norm, lm_head;  // lm_head absent when tied
  std::vector<Layer> layers;
  std::mutex mu;
  int64_t steps = 0;  // AdamW steps taken (torch's `step` state)

  // --- params.cc ---
  void init_random(uint64_t seed);
  void load(std::vector<SafetensorsFile>& files);
  std::vector<Named> base_params();  // Hugging Face names, lm_head omitted when tied
  std::vector<Named> trainable();    // the adapters' tensors when there are any, else base_params
  bool has_adapters() const;
  // Nothing of this model trains from now on (a KL reference, a generator's policy): in bf16
  // precision on the CPU its projections then keep only their bf16 copies, as a frozen base does.
  void freeze();
  bool frozen() const { return frozen_; }
  // Gives trainable tensors gradients and frees the others'. In bf16 precision on the CPU a frozen
  // base (the model has adapters) keeps only the bf16 copies of its projections, half their
  // memory; its fp32 masters come back (as the bf16 values) once it trains again.
  void refresh_trainable();
  void ensure_gradients();           // zeroed gradients for every trainable tensor that has none yet
  void check_tokens(const int32_t* tokens, int64_t n, const char* what) const;
  // A parameter's storage for `shape`, zeroed; with a compute copy when `copy` and the backend
  // computes in bf16, and without the fp32 master when `master` is false and that copy exists.
  void allocate(Param& p, std::vector<int64_t> shape, bool copy, bool master = true);
  // Whether a frozen base keeps only its projections' bf16 copies: on the CPU, in bf16 precision.
  bool bf16_only_base() const;
  void zero_resident(void* p, size_t bytes);
  // Writes a parameter's values: fill(values) writes numel floats into host memory (the
  // backend's own on the CPU, else a staging copy that is uploaded); the compute copy follows.
  void write(Param& p, const std::function<void(float*)>& fill);
  // n floats of backend memory, readable on the host: the memory itself on the CPU, else a copy
  // downloaded into `keep`.
  const float* host_view(const Buffer& b, int64_t n, std::vector<std::vector<float>>& keep);
  std::vector<float> read(const Buffer& b, int64_t n);
  std::vector<float> values(const Param& p);  // fp32_values, downloaded
  Buffer scratch(int64_t floats, const char* what) { return Buffer(*backend, (size_t)floats * 4, what); }
  Buffer upload_ints(const std::vector<int32_t>& v, const char* what);
  // The rotary table covering positions [0, positions).
  const RopeTable& rope(int64_t positions);

  // --- train.cc ---
  void forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits);
  // logprob[B, T-1] (and entropy), rows past lengths[b]-1 are 0; keeps the activations for
  // backward unless told no backward will follow.
  void logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob, float* entropy,
                bool keep);
  void backward(const float* dlogprob);
  int64_t pending_rows() const;  // B*(T-1) of the kept batch, 0 when none
  // Token rows whose logits the head computes at once, in logprobs and again in backward, so no
  // [rows x vocab] tensor exists beyond one chunk. 0: as many as kHeadChunkBytes hold (tests set it).
  int64_t head_chunk_rows = 0;
  static constexpr int64_t kHeadChunkBytes = int64_t(128) << 20;
  int64_t head_chunk(int64_t N) const;
  // Keep only each layer's input in logprobs; backward runs the layer's forward again before its
  // backward (gradient checkpointing per layer: about one more forward, a layer's activations held).
  bool recompute = false;
  bool frozen_ = false;

  // --- optimizer.cc ---
  void zero_grad();
  double step(double lr, double b1, double b2, double eps, double wd, double max_norm);
  std::vector<uint8_t> optimizer_state();
  void load_optimizer_state(SafetensorsFile& f);

  // --- adapters.cc ---
  void add_adapters(const AdapterSpec& spec, uint64_t seed);
  void load_adapters(const AdapterSpec& spec, SafetensorsFile& f);
  // New values for the adapters the model has (every tensor, same names and shapes): a policy
  // version that differs from the last in its adapters alone.
  void import_adapters(SafetensorsFile& f);
  std::vector<uint8_t> export_adapters();
  void set_adapters_enabled(bool enabled);
  std::vector<Named> adapter_params();  // PEFT names
  void merge_adapters();
  std::vector<uint8_t> export_weights(DType dtype, bool merged);

  // --- generate.cc ---
  std::vector<Completion> generate(const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp);

 private:
  std::unique_ptr<Activations> acts_;
  RopeTable rope_;
  void setup_batch(Activations& a, std::vector<int32_t>& tokens, std::vector<int32_t>& targets, bool keep_layers);
  // keep_layers false: each layer keeps only its input (backward recomputes the rest).
  void run_forward(Activations& a, bool keep_layers);
  // Layer l's forward from s.x_in: its activations into s, its output into out (tmp: N x hidden scratch).
  void layer_forward(const Activations& a, int64_t l, LayerActs& s, float* out, const LayerScratch& w);
  // prof: TEMPER_PROFILE's per-phase timer (model/profile.h).
  void infer_rows(const StepPlan& step, KvCache& kv, float* logits, StepProfile& prof);
};

}  // namespace temper
