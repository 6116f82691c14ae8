// The CUDA twin of a Model (see cuda_model.h): device parameters, the training pass, AdamW and
// generation with continuous batching. Each method mirrors its CPU counterpart in src/cpu/ step
// by step (forward.cc, linear.cc, optimizer.cc, generate.cc) so the two read side by side.
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "backend.h"
#include "cpu/rng.h"
#include "cuda/cuda_model.h"
#include "cuda/kernels.cuh"
#include "cuda/plan.h"
#include "cuda/scheduler.h"

namespace temper {

namespace {

using namespace cuda;

// One device allocation that only grows.
class DevBuf {
 public:
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() { release(); }
  void ensure(size_t bytes, const std::string& what) {
    if (bytes <= bytes_) return;
    release();
    if (bytes == 0) return;
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (bytes > free_b)
      throw std::runtime_error(what + " needs " + std::to_string(bytes >> 20) + " MiB of device memory; " +
                               std::to_string(free_b >> 20) + " MiB of " + std::to_string(total_b >> 20) +
                               " MiB are free");
    CUDA_CHECK(cudaMalloc(&p_, bytes));
    bytes_ = bytes;
  }
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    bytes_ = 0;
  }
  template <typename T = float>
  T* as(int64_t offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(p_) + offset);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// One host Tensor's device twin.
struct DTensor {
  int64_t n = 0;
  bool trains = false;
  DevBuf f32, b16, grad, m, v;
};

class Impl : public CudaModel {
 public:
  Impl(Model& host, const CudaOptions& o) : h_(host), o_(o) {
    CUDA_CHECK(cudaSetDevice(o_.device));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, o_.device));
    if (prop.major < 8)
      throw std::runtime_error("device 'cuda' requested but " + std::string(prop.name) + " is sm_" +
                               std::to_string(prop.major * 10 + prop.minor) +
                               "; the CUDA backend needs sm_80 or newer (bf16 tensor cores)");
    const Config& c = h_.cfg;
    std::string why = attention_unsupported(c.head_dim);
    if (why.empty() && c.heads / c.kv_heads > 16) why = "more than 16 query heads per key/value head";
    if (!why.empty()) throw std::runtime_error("device 'cuda' requested but this model has " + why);
    sms_ = prop.multiProcessorCount;
    name_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ", " +
            (o_.fp32 ? "fp32" : "bf16") + ")";
    CUDA_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&norm_acc_, sizeof(double)));
  }

  ~Impl() override {
    cudaSetDevice(o_.device);
    cudaStreamSynchronize(st_);
    cudaFree(norm_acc_);
    cudaStreamDestroy(st_);
  }

  std::string describe() const override { return name_; }

  // --- parameters ---

  void upload() override {
    device();
    acts_valid_ = false;
    t_.clear();
    std::vector<Named> all = h_.base_params();
    for (auto& n : h_.adapter_params()) all.push_back(n);
    for (auto& n : all) {
      Tensor& t = *n.t;
      DTensor& d = t_[&t];
      d.n = t.numel();
      d.trains = !t.grad.empty();
      const size_t bytes = (size_t)d.n * 4;
      d.f32.ensure(bytes, n.name);
      put(d.f32.as(), t.data.data(), d.n);
      if (!o_.fp32 && t.shape.size() == 2) {
        d.b16.ensure((size_t)d.n * 2, n.name + " (bf16)");
        to_bf16(st_, d.b16.as<bf16>(), d.f32.as(), d.n);
      }
      if (d.trains) {
        d.grad.ensure(bytes, n.name + " gradient");
        d.m.ensure(bytes, n.name + " exp_avg");
        d.v.ensure(bytes, n.name + " exp_avg_sq");
        put(d.grad.as(), t.grad.data(), d.n);
        put_or_zero(d.m.as(), t.m, d.n);
        put_or_zero(d.v.as(), t.v, d.n);
      }
    }
    sync();
    device_newer_ = false;
  }

  void download() override {
    if (!device_newer_) return;
    device();
    std::vector<Named> all = h_.base_params();
    for (auto& n : h_.adapter_params()) all.push_back(n);
    for (auto& n : all) {
      Tensor& t = *n.t;
      DTensor& d = dt(t);
      get(t.data.data(), d.f32.as(), d.n);
      if (d.trains) {
        t.grad.resize(d.n);
        t.m.resize(d.n);
        t.v.resize(d.n);
        get(t.grad.data(), d.grad.as(), d.n);
        get(t.m.data(), d.m.as(), d.n);
        get(t.v.data(), d.v.as(), d.n);
      }
    }
    sync();
    device_newer_ = false;
  }

  // --- training pass ---

  void forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits) override {
    device();
    h_.check_tokens(tokens, B * T, "tokens");
    acts_valid_ = false;
    std::vector<int32_t> tok(tokens, tokens + B * T), targets(B * T, -1);
    setup(tok, targets, B, T, false);
    run_forward();
    logits.resize((size_t)(B * T * h_.cfg.vocab));
    get(logits.data(), A(plan_.logits), B * T * h_.cfg.vocab);
    sync();
  }

  void logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob, float* entropy,
                bool keep) override {
    device();
    if (T < 2) throw std::runtime_error("seqLen must be at least 2 to have a next token");
    for (int64_t b = 0; lengths && b < B; b++)
      if (lengths[b] < 1 || lengths[b] > T)
        throw std::runtime_error("lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                                 " is out of range [1, " + std::to_string(T) + "]");
    acts_valid_ = false;
    std::vector<int32_t> tok(tokens, tokens + B * T), targets(B * T, -1);
    for (int64_t b = 0; b < B; b++) {
      int64_t len = lengths ? lengths[b] : T;
      for (int64_t t = len; t < T; t++) tok[b * T + t] = 0;
      h_.check_tokens(tok.data() + b * T, len, ("tokens of sequence " + std::to_string(b)).c_str());
      for (int64_t t = 0; t + 1 < len; t++) targets[b * T + t] = tok[b * T + t + 1];
    }
    setup(tok, targets, B, T, keep);
    run_forward();
    const int64_t N = B * T;
    logprob_forward(st_, A(plan_.lp), entropy ? A(plan_.ent) : nullptr, A(plan_.lse), A(plan_.logits),
                    I(plan_.targets), N, h_.cfg.vocab);
    std::vector<float> lp(N), ent(entropy ? N : 0);
    get(lp.data(), A(plan_.lp), N);
    if (entropy) get(ent.data(), A(plan_.ent), N);
    sync();
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t + 1 < T; t++) {
        logprob[b * (T - 1) + t] = lp[b * T + t];
        if (entropy) entropy[b * (T - 1) + t] = ent[b * T + t];
      }
    acts_valid_ = keep;
  }

  int64_t pending_rows() const override { return acts_valid_ ? plan_.B * (plan_.T - 1) : 0; }

  void backward(const float* dlogprob) override {
    device();
    if (!acts_valid_) throw std::runtime_error("backward needs a logprobs call on the batch first (none is pending)");
    acts_valid_ = false;  // consumed, error or not
    const Config& c = h_.cfg;
    const int64_t B = plan_.B, T = plan_.T, N = B * T, C = c.hidden, F = c.inter, V = c.vocab, H = c.heads,
                  KV = c.kv_heads, D = c.head_dim;
    std::vector<float> w(N, 0.0f);
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t + 1 < T; t++) {
        float d = dlogprob[b * (T - 1) + t];
        if (!std::isfinite(d))
          throw std::runtime_error("dlogprob[" + std::to_string(b * (T - 1) + t) + "] is not a finite number");
        w[b * T + t] = d;
      }
    put(A(plan_.w), w.data(), N);
    device_newer_ = true;
    float* logits = A(plan_.logits);
    logprob_backward(st_, logits, logits, A(plan_.lse), I(plan_.targets), A(plan_.w), N, V);
    Tensor& head = c.tied ? h_.embed : h_.lm_head;
    float *dlnf = A(plan_.dln), *dx = A(plan_.dx);
    gemm(st_, o_.fp32, sms_, N, C, V, 1.0f, rows(logits, V), {W(head), !o_.fp32, C, false}, false, dlnf, C, nullptr);
    if (float* g = G(head))
      gemm(st_, o_.fp32, sms_, V, C, N, 1.0f, {logits, false, V, true}, {A(plan_.lnf), false, C, false}, true, g, C,
           nullptr);
    CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)N * C * 4, st_));
    rmsnorm_backward(st_, dx, G(h_.norm), dlnf, A(plan_.x_final), F32(h_.norm), A(plan_.rstdf), N, C);
    float *dln = A(plan_.dln), *dh = A(plan_.dh), *dg = A(plan_.dg), *du = A(plan_.du), *dq = A(plan_.dq),
          *dk = A(plan_.dk), *dv = A(plan_.dv), *dao = A(plan_.dao);
    const int32_t* pos = I(plan_.pos);
    for (int64_t l = c.layers - 1; l >= 0; l--) {
      Layer& L = h_.layers[l];
      const LayerOffsets& s = plan_.layers[l];
      linear_backward(L.down, l, 6, dh, false, dx, A(s.h), N);
      swiglu_backward(st_, dg, du, dh, A(s.g), A(s.u), N * F);
      linear_backward(L.gate, l, 4, dln, false, dg, A(s.ln2), N);
      linear_backward(L.up, l, 5, dln, true, du, A(s.ln2), N);
      rmsnorm_backward(st_, dx, G(L.ln2), dln, A(s.x_mid), F32(L.ln2), A(s.rstd2), N, C);
      linear_backward(L.o, l, 3, dao, false, dx, A(s.ao), N);
      attention_backward(st_, dq, dk, dv, A(plan_.dsum), dao, A(s.ao), A(s.lse), A(s.q), A(s.k), A(s.v), B, T, H,
                         KV, D);
      rope(st_, dq, pos, N, H, D, cos_.as(), sin_.as(), true);
      rope(st_, dk, pos, N, KV, D, cos_.as(), sin_.as(), true);
      linear_backward(L.q, l, 0, dln, false, dq, A(s.ln1), N);
      linear_backward(L.k, l, 1, dln, true, dk, A(s.ln1), N);
      linear_backward(L.v, l, 2, dln, true, dv, A(s.ln1), N);
      rmsnorm_backward(st_, dx, G(L.ln1), dln, A(s.x_in), F32(L.ln1), A(s.rstd1), N, C);
    }
    if (float* g = G(h_.embed)) embedding_backward(st_, g, dx, I(plan_.tokens), N, C);
    sync();
  }

  // --- optimizer ---

  void zero_grad() override {
    device();
    for (auto& n : h_.trainable()) {
      DTensor& d = dt(*n.t);
      if (d.trains) CUDA_CHECK(cudaMemsetAsync(d.grad.as(), 0, (size_t)d.n * 4, st_));
    }
    sync();
    device_newer_ = true;
  }

  double step(double lr, double b1, double b2, double eps, double wd, double max_norm) override {
    device();
    std::vector<Named> params = h_.trainable();
    CUDA_CHECK(cudaMemsetAsync(norm_acc_, 0, sizeof(double), st_));
    for (auto& n : params) sum_squares(st_, norm_acc_, dt(*n.t).grad.as(), dt(*n.t).n);
    double ss = 0;
    CUDA_CHECK(cudaMemcpyAsync(&ss, norm_acc_, sizeof(double), cudaMemcpyDeviceToHost, st_));
    sync();
    double norm = std::sqrt(ss);
    if (!std::isfinite(norm))
      throw std::runtime_error("the gradient is not finite (norm " + std::to_string(norm) + "); the step was not taken");
    float scale = 1.0f;
    if (max_norm > 0 && norm > max_norm) scale = (float)(max_norm / (norm + 1e-6));
    h_.steps++;
    const double bc1 = 1.0 - std::pow(b1, (double)h_.steps), bc2_sqrt = std::sqrt(1.0 - std::pow(b2, (double)h_.steps));
    for (auto& n : params) {
      DTensor& d = dt(*n.t);
      adamw(st_, d.f32.as(), d.b16.bytes() ? d.b16.as<bf16>() : nullptr, d.grad.as(), d.m.as(), d.v.as(), d.n, scale,
            (float)(lr / bc1), (float)(1.0 - lr * wd), (float)b1, (float)b2, (float)eps, (float)(1.0 / bc2_sqrt));
    }
    sync();
    device_newer_ = true;
    return norm;
  }

  // --- generation ---

  std::vector<Completion> generate(const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp) override {
    device();
    acts_valid_ = false;
    const Config& c = h_.cfg;
    const int64_t P = (int64_t)prompts.size(), S = P * sp.n, V = c.vocab;
    if (P == 0) throw std::runtime_error("prompts is empty");
    std::vector<int64_t> lens;
    int64_t longest = 0;
    for (int64_t i = 0; i < P; i++) {
      if (prompts[i].empty()) throw std::runtime_error("prompts[" + std::to_string(i) + "] is empty");
      h_.check_tokens(prompts[i].data(), (int64_t)prompts[i].size(), ("prompts[" + std::to_string(i) + "]").c_str());
      lens.push_back((int64_t)prompts[i].size());
      longest = std::max<int64_t>(longest, lens.back());
    }
    const int64_t cap = longest + sp.max_new;
    if (cap > (int64_t)INT32_MAX) throw std::runtime_error("prompt plus maxNewTokens is too long");
    const int64_t slots = plan_slots(S, sp.n, cap);
    const int64_t budget = std::max<int64_t>(4096, longest);
    BatchScheduler sched(lens, sp.n, slots, sp.max_new, budget);
    std::vector<Completion> out(S);
    std::vector<Rng> rngs;
    for (int64_t i = 0; i < P; i++)
      for (int64_t j = 0; j < sp.n; j++) {
        uint64_t s = sp.seed;
        rngs.emplace_back(splitmix64(s) ^ ((uint64_t)i * 0xD1B54A32D192ED03ull) ^ ((uint64_t)j * 0x8CB92BA72F3D8DD7ull));
      }
    std::set<int32_t> stop(sp.stop.begin(), sp.stop.end());
    if (!sched.finished()) {
      kv_.slots = slots, kv_.cap = cap;
      const size_t elem = o_.fp32 ? 4 : 2,
                   per_layer = (size_t)slots * c.kv_heads * cap * c.head_dim * elem;
      kv_.k.ensure(per_layer * c.layers, "the KV cache (" + std::to_string(slots) + " slots of " +
                                             std::to_string(cap) + " positions)");
      kv_.v.ensure(per_layer * c.layers, "the KV cache");
      kv_.layer_bytes = per_layer;
      ensure_rope(cap);
    }
    while (!sched.finished()) {
      StepPlan step = sched.next(prompts);
      if (step.empty()) throw std::runtime_error("generate: the scheduler stalled (no slot could be filled)");
      infer_rows(step);
      for (const SlotCopy& cp : step.copies) copy_slot(cp);
      const int64_t picks = (int64_t)step.pick_seq.size();
      std::vector<double> u(picks, 0.0);
      if (sp.temperature > 0)
        for (int64_t i = 0; i < picks; i++) u[i] = rngs[step.pick_seq[i]].uniform();
      gen_.pick_row.ensure(picks * 8, "sampling");
      gen_.u_draw.ensure(picks * 8, "sampling");
      gen_.picked.ensure(picks * 4, "sampling");
      gen_.lp.ensure(picks * 4, "sampling");
      CUDA_CHECK(cudaMemcpyAsync(gen_.pick_row.as<int64_t>(), step.pick_row.data(), picks * 8, cudaMemcpyHostToDevice, st_));
      CUDA_CHECK(cudaMemcpyAsync(gen_.u_draw.as<double>(), u.data(), picks * 8, cudaMemcpyHostToDevice, st_));
      sample(st_, gen_.picked.as<int32_t>(), gen_.lp.as(), gen_.logits.as(), gen_.pick_row.as<int64_t>(),
             gen_.u_draw.as<double>(), picks, V, (float)sp.temperature, sp.top_k, (float)sp.top_p);
      std::vector<int32_t> picked(picks);
      std::vector<float> lp(picks);
      CUDA_CHECK(cudaMemcpyAsync(picked.data(), gen_.picked.as<int32_t>(), picks * 4, cudaMemcpyDeviceToHost, st_));
      CUDA_CHECK(cudaMemcpyAsync(lp.data(), gen_.lp.as(), picks * 4, cudaMemcpyDeviceToHost, st_));
      sync();
      for (int64_t i = 0; i < picks; i++) out[step.pick_seq[i]].logprobs.push_back(lp[i]);
      sched.commit(step, picked, stop);
    }
    for (int64_t s = 0; s < S; s++) {
      out[s].tokens = sched.tokens(s);
      out[s].finish = sched.finish(s);
    }
    return out;
  }

 private:
  Model& h_;
  CudaOptions o_;
  int sms_ = 0;
  std::string name_;
  cudaStream_t st_ = nullptr;
  double* norm_acc_ = nullptr;
  std::map<const Tensor*, DTensor> t_;
  bool device_newer_ = false;
  // The training batch: one arena laid out by plan_training, kept for backward when asked.
  DevBuf arena_;
  TrainPlan plan_;
  bool acts_valid_ = false;
  DevBuf cos_, sin_;
  int64_t rope_positions_ = 0;
  struct {
    int64_t slots = 0, cap = 0;
    size_t layer_bytes = 0;
    DevBuf k, v;
  } kv_;
  // Generation's per-step buffers, grown to the largest step seen.
  struct {
    DevBuf tok, slot, pos, want, x, ln, q, k, v, ao, tmp, g, u, xs, logits, ax, dw, norm, colscale;
    DevBuf pick_row, u_draw, picked, lp;
  } gen_;

  void device() { CUDA_CHECK(cudaSetDevice(o_.device)); }
  void sync() { CUDA_CHECK(cudaStreamSynchronize(st_)); }
  void put(float* d, const float* h, int64_t n) {
    if (n) CUDA_CHECK(cudaMemcpyAsync(d, h, (size_t)n * 4, cudaMemcpyHostToDevice, st_));
  }
  void get(float* h, const float* d, int64_t n) {
    if (n) CUDA_CHECK(cudaMemcpyAsync(h, d, (size_t)n * 4, cudaMemcpyDeviceToHost, st_));
  }
  void put_or_zero(float* d, const std::vector<float>& h, int64_t n) {
    if ((int64_t)h.size() == n) put(d, h.data(), n);
    else CUDA_CHECK(cudaMemsetAsync(d, 0, (size_t)n * 4, st_));
  }

  DTensor& dt(const Tensor& t) {
    auto it = t_.find(&t);
    if (it == t_.end()) throw std::runtime_error("internal: a tensor has no device copy (upload() was not called)");
    return it->second;
  }
  float* F32(const Tensor& t) { return dt(t).f32.as(); }
  // The weight a product reads: the bf16 copy, or the master in fp32 mode.
  const void* W(const Tensor& t) { return o_.fp32 ? (const void*)dt(t).f32.as() : (const void*)dt(t).b16.as<bf16>(); }
  float* G(const Tensor& t) {
    if (t.data.empty()) return nullptr;
    DTensor& d = dt(t);
    return d.trains ? d.grad.as() : nullptr;
  }
  const float* bias(const Linear& x) { return x.b.data.empty() ? nullptr : F32(x.b); }
  float* A(int64_t offset) { return arena_.as(offset); }
  int32_t* I(int64_t offset) { return arena_.as<int32_t>(offset); }

  void ensure_rope(int64_t positions) {
    const Config& c = h_.cfg;
    h_.rope.ensure(c.rope_theta, c.head_dim, positions, c.rope_scaling);
    if (h_.rope.positions == rope_positions_) return;
    const int64_t n = h_.rope.positions * (c.head_dim / 2);
    cos_.ensure((size_t)n * 4, "the rotary table");
    sin_.ensure((size_t)n * 4, "the rotary table");
    put(cos_.as(), h_.rope.cos.data(), n);
    put(sin_.as(), h_.rope.sin.data(), n);
    sync();
    rope_positions_ = h_.rope.positions;
  }

  PlanShape shape() const {
    const Config& c = h_.cfg;
    PlanShape s{c.vocab, c.hidden, c.inter, c.layers, c.heads, c.kv_heads, c.head_dim};
    const Layer& L0 = h_.layers[0];
    for (int i = 0; i < 7; i++) {
      const Linear* x = L0.linears[i];
      s.rank[i] = x->lora ? x->lora->r : 0;
      s.dora[i] = x->lora && x->lora->dora;
    }
    return s;
  }

  void setup(const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets, int64_t B, int64_t T,
             bool backward) {
    plan_ = plan_training(shape(), B, T, backward);
    arena_.ensure((size_t)plan_.bytes, "a batch of " + std::to_string(B) + " x " + std::to_string(T) + " tokens");
    std::vector<int32_t> pos(B * T);
    for (int64_t n = 0; n < B * T; n++) pos[n] = (int32_t)(n % T);
    CUDA_CHECK(cudaMemcpyAsync(I(plan_.tokens), tokens.data(), B * T * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(I(plan_.targets), targets.data(), B * T * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(I(plan_.pos), pos.data(), B * T * 4, cudaMemcpyHostToDevice, st_));
    ensure_rope(T);
  }

  // Linear::forward on the device. save: the layer's adapter buffers (ax, z, norm, colscale).
  struct LinSave {
    float *ax, *z, *norm, *colscale;
  };
  void linear_forward(const Linear& x, float* y, const float* in, int64_t N, const LinSave& s, float* dwtmp,
                      bool split_ok) {
    if (!x.lora) {
      gemm(st_, o_.fp32, sms_, N, x.out, x.in, 1.0f, rows(in, x.in), weight_t(W(x.w), !o_.fp32, x.in), false, y,
           x.out, bias(x), split_ok);
      return;
    }
    const Adapter& a = *x.lora;
    gemm(st_, o_.fp32, sms_, N, a.r, x.in, 1.0f, rows(in, x.in), {F32(a.A), false, x.in, true}, false, s.ax, a.r,
         nullptr);
    const bool bias_now = !a.dora && !x.b.data.empty();
    gemm(st_, o_.fp32, sms_, N, x.out, x.in, 1.0f, rows(in, x.in), weight_t(W(x.w), !o_.fp32, x.in), false, y, x.out,
         bias_now ? bias(x) : nullptr, split_ok);
    gemm(st_, o_.fp32, sms_, N, x.out, a.r, a.scale, rows(s.ax, a.r), {F32(a.B), false, a.r, true}, true, y, x.out,
         nullptr);
    if (!a.dora) return;
    // The row norms of W + s B A, recomputed every call because A and B train.
    gemm(st_, o_.fp32, sms_, x.out, x.in, a.r, a.scale, {F32(a.B), false, a.r, false}, {F32(a.A), false, x.in, false},
         false, dwtmp, x.in, nullptr);
    dora_norms(st_, s.norm, s.colscale, F32(x.w), dwtmp, F32(a.mag), x.out, x.in);
    dora_scale(st_, y, s.z, s.colscale, bias(x), N, x.out);
  }

  // Linear::backward on the device.
  void linear_backward(Linear& x, int64_t layer, int slot, float* dx, bool accumulate, const float* dy,
                       const float* in, int64_t N) {
    const LayerOffsets& lo = plan_.layers[layer];
    const float* dz = dy;
    Adapter* a = x.lora.get();
    if (a && a->dora) {
      dora_backward(st_, A(plan_.dz), G(a->mag), dy, A(lo.z[slot]), A(lo.colscale[slot]), A(lo.norm[slot]), N,
                    x.out);
      dz = A(plan_.dz);
    }
    if (float* db = G(x.b)) column_sums(st_, db, dy, N, x.out);
    if (dx)
      gemm(st_, o_.fp32, sms_, N, x.in, x.out, 1.0f, rows(dz, x.out), {W(x.w), !o_.fp32, x.in, false}, accumulate, dx,
           x.in, nullptr);
    if (float* dw = G(x.w))
      gemm(st_, o_.fp32, sms_, x.out, x.in, N, 1.0f, {dz, false, x.out, true}, {in, false, x.in, false}, true, dw,
           x.in, nullptr);
    if (!a) return;
    const float* ax = A(lo.ax[slot]);
    if (float* dB = G(a->B))
      gemm(st_, o_.fp32, sms_, x.out, a->r, N, a->scale, {dz, false, x.out, true}, {ax, false, a->r, false}, true, dB,
           a->r, nullptr);
    float* dax = A(plan_.dax);
    gemm(st_, o_.fp32, sms_, N, a->r, x.out, a->scale, rows(dz, x.out), {F32(a->B), false, a->r, false}, false, dax,
         a->r, nullptr);
    if (float* dA = G(a->A))
      gemm(st_, o_.fp32, sms_, a->r, x.in, N, 1.0f, {dax, false, a->r, true}, {in, false, x.in, false}, true, dA, x.in,
           nullptr);
    if (dx)
      gemm(st_, o_.fp32, sms_, N, x.in, a->r, 1.0f, rows(dax, a->r), {F32(a->A), false, x.in, false}, true, dx, x.in,
           nullptr);
  }

  LinSave saves(const LayerOffsets& lo, int i) {
    auto at = [&](int64_t off) { return off < 0 ? nullptr : A(off); };
    return {at(lo.ax[i]), at(lo.z[i]), at(lo.norm[i]), at(lo.colscale[i])};
  }

  // Model::run_forward on the device, into the arena.
  void run_forward() {
    const Config& c = h_.cfg;
    const int64_t B = plan_.B, T = plan_.T, N = B * T, C = c.hidden, F = c.inter, H = c.heads, KV = c.kv_heads,
                  D = c.head_dim;
    const int32_t* pos = I(plan_.pos);
    float* tmp = A(plan_.tmp);
    float* dwtmp = A(plan_.dwtmp);
    embedding_forward(st_, A(plan_.layers[0].x_in), I(plan_.tokens), F32(h_.embed), N, C);
    for (int64_t l = 0; l < c.layers; l++) {
      Layer& L = h_.layers[l];
      const LayerOffsets& s = plan_.layers[l];
      rmsnorm_forward(st_, A(s.ln1), A(s.rstd1), A(s.x_in), F32(L.ln1), N, C, (float)c.eps);
      linear_forward(L.q, A(s.q), A(s.ln1), N, saves(s, 0), dwtmp, false);
      linear_forward(L.k, A(s.k), A(s.ln1), N, saves(s, 1), dwtmp, false);
      linear_forward(L.v, A(s.v), A(s.ln1), N, saves(s, 2), dwtmp, false);
      rope(st_, A(s.q), pos, N, H, D, cos_.as(), sin_.as(), false);
      rope(st_, A(s.k), pos, N, KV, D, cos_.as(), sin_.as(), false);
      attention_forward(st_, A(s.ao), A(s.lse), A(s.q), A(s.k), A(s.v), B, T, H, KV, D);
      linear_forward(L.o, tmp, A(s.ao), N, saves(s, 3), dwtmp, false);
      add(st_, A(s.x_mid), A(s.x_in), tmp, N * C);
      rmsnorm_forward(st_, A(s.ln2), A(s.rstd2), A(s.x_mid), F32(L.ln2), N, C, (float)c.eps);
      linear_forward(L.gate, A(s.g), A(s.ln2), N, saves(s, 4), dwtmp, false);
      linear_forward(L.up, A(s.u), A(s.ln2), N, saves(s, 5), dwtmp, false);
      swiglu_forward(st_, A(s.h), A(s.g), A(s.u), N * F);
      linear_forward(L.down, tmp, A(s.h), N, saves(s, 6), dwtmp, false);
      add(st_, l + 1 < c.layers ? A(plan_.layers[l + 1].x_in) : A(plan_.x_final), A(s.x_mid), tmp, N * C);
    }
    rmsnorm_forward(st_, A(plan_.lnf), A(plan_.rstdf), A(plan_.x_final), F32(h_.norm), N, C, (float)c.eps);
    const Tensor& head = c.tied ? h_.embed : h_.lm_head;
    gemm(st_, o_.fp32, sms_, N, c.vocab, C, 1.0f, rows(A(plan_.lnf), C), weight_t(W(head), !o_.fp32, C), false,
         A(plan_.logits), c.vocab, nullptr);
  }

  int64_t plan_slots(int64_t S, int64_t n, int64_t cap) {
    const Config& c = h_.cfg;
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const double per_slot = 2.0 * c.layers * c.kv_heads * cap * c.head_dim * (o_.fp32 ? 4 : 2);
    // The cache already allocated is reused (or freed before a larger one is made).
    return plan_kv_slots(S, n, o_.max_slots, per_slot, (double)free_b + kv_.k.bytes() + kv_.v.bytes());
  }

  void copy_slot(const SlotCopy& cp) {
    const Config& c = h_.cfg;
    const size_t elem = o_.fp32 ? 4 : 2, row = (size_t)cp.length * c.head_dim * elem,
                 pitch = (size_t)kv_.cap * c.head_dim * elem, slot_bytes = pitch * c.kv_heads;
    for (int64_t l = 0; l < c.layers; l++)
      for (DevBuf* buf : {&kv_.k, &kv_.v}) {
        char* base = buf->as<char>() + l * kv_.layer_bytes;
        CUDA_CHECK(cudaMemcpy2DAsync(base + cp.to * slot_bytes, pitch, base + cp.from * slot_bytes, pitch, row,
                                     c.kv_heads, cudaMemcpyDeviceToDevice, st_));
      }
  }

  template <typename KVT>
  KVT* kv_layer(DevBuf& b, int64_t l) {
    return reinterpret_cast<KVT*>(b.as<char>() + l * kv_.layer_bytes);
  }

  // generate.cc's infer_rows on the device: the step's rows through the decoder, their keys and
  // values into the cache, logits for the wanted rows into gen_.logits.
  void infer_rows(const StepPlan& st) {
    const Config& c = h_.cfg;
    const int64_t R = (int64_t)st.tok.size(), Wn = (int64_t)st.want.size(), C = c.hidden,
                  Q = c.heads * c.head_dim, K = c.kv_heads * c.head_dim, F = c.inter, H = c.heads,
                  KV = c.kv_heads, D = c.head_dim, V = c.vocab;
    auto& b = gen_;
    b.tok.ensure(R * 4, "a decode step"), b.slot.ensure(R * 4, "a decode step"), b.pos.ensure(R * 4, "a decode step");
    b.want.ensure(Wn * 8, "a decode step");
    b.x.ensure(R * C * 4, "a decode step"), b.ln.ensure(R * C * 4, "a decode step");
    b.q.ensure(R * Q * 4, "a decode step"), b.k.ensure(R * K * 4, "a decode step");
    b.v.ensure(R * K * 4, "a decode step"), b.ao.ensure(R * Q * 4, "a decode step");
    b.tmp.ensure(R * C * 4, "a decode step"), b.g.ensure(R * F * 4, "a decode step");
    b.u.ensure(R * F * 4, "a decode step"), b.xs.ensure(Wn * C * 4, "a decode step");
    b.logits.ensure((size_t)Wn * V * 4, "a decode step's logits");
    int64_t rmax = 0, dw = 0, widest = 0;
    for (const Linear* x : h_.layers[0].linears)
      if (x->lora) {
        rmax = std::max(rmax, x->lora->r);
        if (x->lora->dora) dw = std::max(dw, x->out * x->in), widest = std::max(widest, x->out);
      }
    b.ax.ensure(R * std::max<int64_t>(rmax, 1) * 4, "a decode step");
    b.dw.ensure(std::max<int64_t>(dw, 1) * 4, "a decode step");
    b.norm.ensure(std::max<int64_t>(widest, 1) * 4, "a decode step");
    b.colscale.ensure(std::max<int64_t>(widest, 1) * 4, "a decode step");
    CUDA_CHECK(cudaMemcpyAsync(b.tok.as<int32_t>(), st.tok.data(), R * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(b.slot.as<int32_t>(), st.slot.data(), R * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(b.pos.as<int32_t>(), st.pos.data(), R * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(b.want.as<int64_t>(), st.want.data(), Wn * 8, cudaMemcpyHostToDevice, st_));
    const int32_t *slot = b.slot.as<int32_t>(), *pos = b.pos.as<int32_t>();
    LinSave ls{b.ax.as(), nullptr, b.norm.as(), b.colscale.as()};
    float *x = b.x.as(), *ln = b.ln.as(), *q = b.q.as(), *k = b.k.as(), *v = b.v.as(), *ao = b.ao.as(),
          *tmp = b.tmp.as(), *g = b.g.as(), *u = b.u.as();
    embedding_forward(st_, x, b.tok.as<int32_t>(), F32(h_.embed), R, C);
    for (int64_t l = 0; l < c.layers; l++) {
      Layer& L = h_.layers[l];
      rmsnorm_forward(st_, ln, nullptr, x, F32(L.ln1), R, C, (float)c.eps);
      linear_forward(L.q, q, ln, R, ls, b.dw.as(), true);
      linear_forward(L.k, k, ln, R, ls, b.dw.as(), true);
      linear_forward(L.v, v, ln, R, ls, b.dw.as(), true);
      rope(st_, q, pos, R, H, D, cos_.as(), sin_.as(), false);
      rope(st_, k, pos, R, KV, D, cos_.as(), sin_.as(), false);
      if (o_.fp32) {
        kv_write<float>(st_, kv_layer<float>(kv_.k, l), kv_layer<float>(kv_.v, l), k, v, slot, pos, R, kv_.cap, KV, D);
        attention_decode<float>(st_, ao, q, kv_layer<float>(kv_.k, l), kv_layer<float>(kv_.v, l), slot, pos, R,
                                kv_.cap, H, KV, D);
      } else {
        kv_write<bf16>(st_, kv_layer<bf16>(kv_.k, l), kv_layer<bf16>(kv_.v, l), k, v, slot, pos, R, kv_.cap, KV, D);
        attention_decode<bf16>(st_, ao, q, kv_layer<bf16>(kv_.k, l), kv_layer<bf16>(kv_.v, l), slot, pos, R, kv_.cap,
                               H, KV, D);
      }
      linear_forward(L.o, tmp, ao, R, ls, b.dw.as(), true);
      add(st_, x, x, tmp, R * C);
      rmsnorm_forward(st_, ln, nullptr, x, F32(L.ln2), R, C, (float)c.eps);
      linear_forward(L.gate, g, ln, R, ls, b.dw.as(), true);
      linear_forward(L.up, u, ln, R, ls, b.dw.as(), true);
      swiglu_forward(st_, g, g, u, R * F);
      linear_forward(L.down, tmp, g, R, ls, b.dw.as(), true);
      add(st_, x, x, tmp, R * C);
    }
    gather_rows(st_, b.xs.as(), x, b.want.as<int64_t>(), Wn, C);
    rmsnorm_forward(st_, b.xs.as(), nullptr, b.xs.as(), F32(h_.norm), Wn, C, (float)c.eps);
    const Tensor& head = c.tied ? h_.embed : h_.lm_head;
    gemm(st_, o_.fp32, sms_, Wn, V, C, 1.0f, rows(b.xs.as(), C), weight_t(W(head), !o_.fp32, C), false, b.logits.as(),
         V, nullptr, true);
  }
};

}  // namespace

std::unique_ptr<CudaModel> make_cuda_model(Model& host, const CudaOptions& o) {
  std::string why;
  int n = cuda_device_count(&why);
  if (n == 0) throw std::runtime_error("device 'cuda' requested but no CUDA device is usable: " + why);
  if (o.device < 0 || o.device >= n)
    throw std::runtime_error("device 'cuda' requested with deviceIndex " + std::to_string(o.device) + " but " +
                             std::to_string(n) + " CUDA device(s) are present");
  // No upload yet: the binding uploads after the weights are loaded or initialised.
  return std::make_unique<Impl>(host, o);
}

}  // namespace temper
