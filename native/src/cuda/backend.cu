// The CUDA backend: backend/ops.h on one device, each op one or a few of this folder's kernels
// (kernels.cuh) queued in order on one stream. Scratch memory comes from a cache of released
// device blocks (a cudaMalloc synchronises the device; a step's buffers are the same every step);
// parameters are allocated as they are. Plain host code around the launchers.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "backend/backends.h"
#include "backend/block_cache.h"
#include "cuda/kernels.cuh"
#include "cuda/plan.h"

namespace temper {

namespace {

using namespace cuda;

Operand operand(const Mat& m) { return {m.p, m.dtype == DType::BF16, m.ld, m.trans}; }

std::string mib(double bytes) { return std::to_string((int64_t)(bytes / (1 << 20))); }

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& o)
      : o_(o), cache_([this](size_t bytes) { return device_malloc(bytes); }, [](void* p) { cudaFree(p); }, SIZE_MAX) {
    on();
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, o_.device));
    if (prop.major < 8)
      throw std::runtime_error("device 'cuda' requested but " + std::string(prop.name) + " is sm_" +
                               std::to_string(prop.major * 10 + prop.minor) +
                               "; the CUDA backend needs sm_80 or newer (bf16 tensor cores)");
    sms_ = prop.multiProcessorCount;
    name_ = "cuda: " + std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ", " +
            (o_.fp32 ? "fp32" : "bf16") + ")";
    CUDA_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaMalloc(&norm_acc_, sizeof(double)));
  }

  ~CudaBackend() override {
    cudaSetDevice(o_.device);
    cudaStreamSynchronize(st_);
    cache_.trim();
    cudaFree(norm_acc_);
    cudaStreamDestroy(st_);
  }

  std::string describe() const override { return name_; }
  DType compute_dtype() const override { return o_.fp32 ? DType::F32 : DType::BF16; }
  std::string attention_unsupported(int64_t H, int64_t KV, int64_t D) const override {
    std::string why = cuda::attention_unsupported(D);
    if (why.empty() && H / KV > 16) why = "more than 16 query heads per key/value head";
    return why.empty() ? "" : "device 'cuda' requested but this model has " + why;
  }

  // --- memory ---
  void* alloc(size_t bytes, bool resident, const char* what, size_t* held) override {
    on();
    try {
      if (!resident) return cache_.take(bytes, held);
      *held = bytes;
      return device_malloc(bytes);
    } catch (const std::bad_alloc&) {
      size_t free_b = 0, total_b = 0;
      CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
      throw std::runtime_error(std::string(what) + " needs " + mib((double)bytes) + " MiB of device memory; " +
                               mib((double)free_b) + " MiB of " + mib((double)total_b) + " MiB are free");
    }
  }
  // Scratch goes back to the cache at once, even while queued kernels still use it: whatever
  // takes it next is queued behind them on the same stream.
  void release(void* p, size_t held, bool resident) override {
    on();
    if (resident) cudaFree(p);
    else cache_.give(p, held);
  }
  void* host_address(void*) override { return nullptr; }
  // From pageable host memory the copy is staged before the call returns, so src may be reused.
  void upload(void* dst, const void* src, size_t bytes) override {
    on();
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st_));
  }
  void download(void* dst, const void* src, size_t bytes) override {
    on();
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st_));
    CUDA_CHECK(cudaStreamSynchronize(st_));
  }
  void zero(void* p, size_t bytes) override {
    on();
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, st_));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    on();
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st_));
  }
  void copy_rows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, int64_t rows) override {
    on();
    if (width && rows)
      CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, (size_t)rows, cudaMemcpyDeviceToDevice, st_));
  }
  void check_memory(double bytes, const std::string& what) override {
    on();
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const double cached = (double)cache_.cached();
    if (bytes > (double)free_b + cached)
      throw std::runtime_error(what + " would need " + mib(bytes) + " MiB of device memory; " + mib((double)free_b) +
                               " MiB of " + mib((double)total_b) + " MiB are free and " + mib(cached) +
                               " MiB cached");
  }
  // Memory the cache holds counts as available: it is freed before a larger block is refused.
  Batching batching(int64_t S, int64_t n, int64_t, int64_t longest, double bytes_per_block, int64_t worst_blocks,
                    int64_t min_blocks, double bytes_per_slot, double bytes_per_row, const std::string&) override {
    on();
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const int64_t prefill = std::max<int64_t>(4096, longest);
    double available = (double)free_b + (double)cache_.cached() - (double)prefill * bytes_per_row;
    if (available < 0) available = 0;
    const int64_t blocks = plan_kv_blocks(worst_blocks, min_blocks, bytes_per_block, available);
    return {plan_kv_slots(S, n, o_.max_slots, bytes_per_slot, available - (double)blocks * bytes_per_block), prefill,
            blocks};
  }

  // --- matrix products ---
  void gemm(int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate, float* c, int64_t ldc,
            const float* bias, GemmMode mode) override {
    on();
    cuda::gemm(st_, o_.fp32 || mode == GemmMode::Exact, sms_, M, N, K, alpha, operand(a), operand(b), accumulate, c,
               ldc, bias, mode == GemmMode::Decode);
  }
  // The products one after another (each fills the chip on its own), the input normalised once.
  void project(const float* x, int64_t N, int64_t I, const float* norm, float eps,
               const std::vector<Projection>& products, Epilogue epilogue) override {
    on();
    Scratch normed(*this, norm ? (size_t)(N * I) * 4 : 0);
    const float* in = x;
    if (norm) {
      cuda::rmsnorm_forward(st_, normed.f(), nullptr, x, norm, N, I, eps);
      in = normed.f();
    }
    for (const Projection& p : products)
      cuda::gemm(st_, o_.fp32, sms_, N, p.O, I, 1.0f, rows(in, I), operand(p.w.transposed(I)), p.accumulate, p.out,
                 p.O, p.bias, true);
    if (epilogue == Epilogue::SwiGLU)
      cuda::swiglu_forward(st_, products[0].out, products[0].out, products[1].out, N * products[0].O);
  }

  // --- layers ---
  void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) override {
    on();
    cuda::embedding_forward(st_, out, tokens, table, N, C);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) override {
    on();
    cuda::embedding_backward(st_, dtable, dout, tokens, N, C);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                       float eps) override {
    on();
    cuda::rmsnorm_forward(st_, out, rstd, x, w, N, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t N, int64_t C) override {
    on();
    cuda::rmsnorm_backward(st_, dx, dw, dout, x, w, rstd, N, C);
  }
  void rope(float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos, const float* sin,
            bool inverse) override {
    on();
    cuda::rope(st_, x, pos, N, heads, D, cos, sin, inverse);
  }

  // The softmax's log-normaliser: [B, H, T] (flash attention recomputes the rest).
  int64_t attention_saved(int64_t B, int64_t T, int64_t H) const override { return B * H * T; }
  void attention_forward(float* out, float* saved, const float* q, const float* k, const float* v, int64_t B,
                         int64_t T, int64_t H, int64_t KV, int64_t D) override {
    on();
    cuda::attention_forward(st_, out, saved, q, k, v, B, T, H, KV, D);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* saved,
                          const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H, int64_t KV,
                          int64_t D) override {
    on();
    Scratch rowsums(*this, (size_t)(B * H * T) * 4);
    cuda::attention_backward(st_, dq, dk, dv, rowsums.f(), dout, out, saved, q, k, v, B, T, H, KV, D);
  }
  void rope_kv_write(float* q, float* k, const float* v, const int32_t* slot, const int32_t* pos, int64_t R, int64_t H,
                     int64_t KV, int64_t D, const float* cos, const float* sin, const KvLayer& c) override {
    on();
    cuda::rope(st_, q, pos, R, H, D, cos, sin, false);
    cuda::rope(st_, k, pos, R, KV, D, cos, sin, false);
    if (c.dtype == DType::BF16)
      kv_write<bf16>(st_, static_cast<bf16*>(c.k), static_cast<bf16*>(c.v), k, v, slot, pos, R, c.table,
                     c.cap / c.block, c.block, KV, D);
    else
      kv_write<float>(st_, static_cast<float*>(c.k), static_cast<float*>(c.v), k, v, slot, pos, R, c.table,
                      c.cap / c.block, c.block, KV, D);
  }
  void attention_decode(float* out, const float* q, const KvLayer& c, const int32_t* slot, const int32_t* pos,
                        int64_t R, int64_t H, int64_t KV, int64_t D) override {
    on();
    if (c.dtype == DType::BF16)
      cuda::attention_decode<bf16>(st_, out, q, static_cast<const bf16*>(c.k), static_cast<const bf16*>(c.v), slot,
                                   pos, R, c.table, c.cap / c.block, c.block, H, KV, D);
    else
      cuda::attention_decode<float>(st_, out, q, static_cast<const float*>(c.k), static_cast<const float*>(c.v), slot,
                                    pos, R, c.table, c.cap / c.block, c.block, H, KV, D);
  }

  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
    on();
    cuda::swiglu_forward(st_, h, g, u, n);
  }
  void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
    on();
    cuda::swiglu_backward(st_, dg, du, dh, g, u, n);
  }
  void add(float* out, const float* a, const float* b, int64_t n) override {
    on();
    cuda::add(st_, out, a, b, n);
  }
  void column_sums(float* dbias, const float* dy, int64_t N, int64_t O) override {
    on();
    cuda::column_sums(st_, dbias, dy, N, O);
  }
  void gather_rows(float* out, const float* in, const int64_t* idx, int64_t W, int64_t C) override {
    on();
    cuda::gather_rows(st_, out, in, idx, W, C);
  }
  void convert(void* out, DType dtype, const float* in, int64_t n) override {
    on();
    if (dtype != DType::BF16) throw std::runtime_error("convert: only BF16 copies are made");
    to_bf16(st_, static_cast<bf16*>(out), in, n);
  }

  void dora_norms(float* norm, float* colscale, const float* w, const float* dw, const float* mag, int64_t out,
                  int64_t in) override {
    on();
    cuda::dora_norms(st_, norm, colscale, w, dw, mag, out, in);
  }
  void dora_scale(float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out) override {
    on();
    cuda::dora_scale(st_, y, z, colscale, bias, N, out);
  }
  void dora_backward(float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                     const float* norm, int64_t N, int64_t out) override {
    on();
    cuda::dora_backward(st_, dz, dmag, dy, z, colscale, norm, N, out);
  }
  void scale_rows(float* x, const float* s, int64_t R, int64_t C) override {
    on();
    cuda::scale_rows(st_, x, s, R, C);
  }

  void logprob_forward(float* logprob, float* entropy, float* lse, const float* logits, const int32_t* target,
                       int64_t N, int64_t V) override {
    on();
    cuda::logprob_forward(st_, logprob, entropy, lse, logits, target, N, V);
  }
  void logprob_backward(float* dlogits, const float* logits, const float* lse, const int32_t* target, const float* w,
                        int64_t N, int64_t V) override {
    on();
    cuda::logprob_backward(st_, dlogits, logits, lse, target, w, N, V);
  }

  double sum_squares(const std::vector<std::pair<const float*, int64_t>>& tensors) override {
    on();
    CUDA_CHECK(cudaMemsetAsync(norm_acc_, 0, sizeof(double), st_));
    for (auto& [g, n] : tensors) cuda::sum_squares(st_, norm_acc_, g, n);
    double ss = 0;
    CUDA_CHECK(cudaMemcpyAsync(&ss, norm_acc_, sizeof(double), cudaMemcpyDeviceToHost, st_));
    CUDA_CHECK(cudaStreamSynchronize(st_));
    return ss;
  }
  // The step's constants in double on the host, as the CPU's adamw_update forms them.
  void adamw(float* p, uint16_t* p16, const float* g, float* m, float* v, int64_t n, float gscale, double lr,
             double b1, double b2, double eps, double wd, int64_t t) override {
    on();
    const double bc1 = 1.0 - std::pow(b1, (double)t), bc2_sqrt = std::sqrt(1.0 - std::pow(b2, (double)t));
    cuda::adamw(st_, p, reinterpret_cast<bf16*>(p16), g, m, v, n, gscale, (float)(lr / bc1), (float)(1.0 - lr * wd),
                (float)b1, (float)b2, (float)eps, (float)(1.0 / bc2_sqrt));
  }

  void sample(int32_t* token, float* logprob, const float* logits, const int64_t* row_of, const double* u,
              int64_t picks, int64_t V, double temperature, int64_t top_k, double top_p) override {
    on();
    cuda::sample(st_, token, logprob, logits, row_of, u, picks, V, (float)temperature, top_k, (float)top_p);
  }

 private:
  CudaOptions o_;
  BlockCache cache_;
  int sms_ = 0;
  std::string name_;
  cudaStream_t st_ = nullptr;
  double* norm_acc_ = nullptr;

  // Calls may come on any worker thread, and the current device is per thread.
  void on() const {
    thread_local int current = -1;
    if (current != o_.device) {
      CUDA_CHECK(cudaSetDevice(o_.device));
      current = o_.device;
    }
  }

  // cudaMalloc, freeing the cache's blocks once before giving up.
  void* device_malloc(size_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) == cudaSuccess) return p;
    cudaGetLastError();
    CUDA_CHECK(cudaStreamSynchronize(st_));
    cache_.trim();
    if (cudaMalloc(&p, bytes) == cudaSuccess) return p;
    cudaGetLastError();
    throw std::bad_alloc();
  }

  // An op's own scratch, from the cache and back to it when the op has queued its kernels.
  struct Scratch {
    Scratch(CudaBackend& be, size_t bytes) : be_(be) {
      if (bytes) p_ = be.alloc(bytes, false, "an op's scratch", &held_);
    }
    ~Scratch() {
      if (p_) be_.release(p_, held_, false);
    }
    float* f() const { return static_cast<float*>(p_); }
    CudaBackend& be_;
    void* p_ = nullptr;
    size_t held_ = 0;
  };
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& o) {
  std::string why;
  int n = cuda_device_count(&why);
  if (n == 0) throw std::runtime_error("device 'cuda' requested but no CUDA device is usable: " + why);
  if (o.device < 0 || o.device >= n)
    throw std::runtime_error("device 'cuda' requested with deviceIndex " + std::to_string(o.device) + " but " +
                             std::to_string(n) + " CUDA device(s) are present");
  return std::make_unique<CudaBackend>(o);
}

}  // namespace temper
