// The CPU backend: backend/ops.h on host memory, each op one of this folder's kernels over the
// model's own thread pool (OpenBLAS single-threaded inside it, so one thread count governs the
// model and nothing is oversubscribed).
#include <cblas.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "backend/backends.h"
#include "backend/block_cache.h"
#include "cpu/kernels.h"

namespace temper {

namespace {

constexpr size_t kHugePage = size_t(2) << 20;

// `bytes` (a multiple of 64) aligned to 64, or to 2 MiB and advised onto transparent huge pages
// (madvise mode) when that large: a decode step reads the KV cache in 4 KiB blocks scattered over
// its pool, and with 4 KiB pages each block cost a TLB miss (huge pages: attention 1.2x faster
// on the default bench shape).
void* host_alloc(size_t bytes) {
  const bool huge = bytes >= kHugePage;
  void* p = std::aligned_alloc(huge ? kHugePage : 64, bytes);
  if (!p) throw std::bad_alloc();
  if (huge) madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
  return p;
}

// Process-wide, so memory released by one model (or one call) is reused by the next; up to 4 GiB.
BlockCache& host_cache() {
  static BlockCache cache([](size_t bytes) { return host_alloc((bytes + 63) / 64 * 64); },
      [](void* p) { std::free(p); }, size_t(4) << 30);
  return cache;
}

class CpuBackend : public Backend {
 public:
  CpuBackend(int threads, bool bf16, bool invariant) : pool_(threads), bf16_(bf16), invariant_(invariant) {
    if (bf16 && invariant)
      throw std::runtime_error("batchInvariant: the CPU backend's batch-invariant mode computes in fp32 only (precision \"fp32\")");
    openblas_set_num_threads(1);
  }

  std::string describe() const override { return invariant_ ? "cpu (batch-invariant)" : bf16_ ? "cpu (bf16)" : "cpu"; }
  DType compute_dtype() const override { return bf16_ ? DType::BF16 : DType::F32; }
  DType kv_dtype() const override { return DType::F32; }
  // Decode attention on the CPU reads each (block, kv head) run of rows as one stream; in runs of
  // 16 positions (4 KB at head_dim 64) it waited on memory at the start of every run (software
  // prefetch of the next run did not help): runs of 128 made it 1.4x faster at 64 rows x 612
  // positions of the 0.5B shape and 1.2x at the default bench shape's 16 x 96
  // (native/dev/cpu/attention_decode.cc). A completion wastes at most 127 positions of cache.
  int64_t kv_block() const override { return 128; }
  std::string attention_unsupported(int64_t, int64_t, int64_t) const override { return ""; }

  // --- memory ---
  void* alloc(size_t bytes, bool resident, const char*, size_t* held) override {
    if (!resident) return host_cache().take(bytes, held);
    *held = (bytes + 63) / 64 * 64;
    // Parameters, gradients and moments: large, long-lived and touched end to end. On huge
    // pages a 0.5B model's weights fault in a thousand pages instead of half a million; the
    // partial page at the end stays small, so nothing more becomes resident.
    return host_alloc(*held);
  }
  void release(void* p, size_t held, bool resident) override {
    if (resident) std::free(p);
    else host_cache().give(p, held);
  }
  void* host_address(void* p) override { return p; }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void host_parallel(int64_t n, const std::function<void(int64_t)>& fn) override { pool_.run(n, fn); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy_rows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, int64_t rows) override {
    for (int64_t i = 0; i < rows; i++)
      std::memcpy(static_cast<char*>(dst) + i * dpitch, static_cast<const char*>(src) + i * spitch, width);
  }
  // Rather than letting the kernel kill the process when the pages are touched.
  void check_memory(double bytes, const std::string& what) override {
    double total = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (bytes > 0.8 * total)
      throw std::runtime_error(what + " would need " + std::to_string((int64_t)(bytes / 1e6)) +
                               " MB, more than this machine's " + std::to_string((int64_t)(total / 1e6)) +
                               " MB allow; use smaller batches");
  }
  // Every completion a slot and every prompt prefilled at once; the block pool as large as the
  // worst case or half of the machine's memory, whichever is less. The pool is address space:
  // pages are touched only as blocks are first used, and freed blocks are reused first, so what
  // the process holds follows the completions' real lengths.
  Batching batching(int64_t S, int64_t, int64_t prompt_rows, int64_t, double bytes_per_block, int64_t worst_blocks,
                    int64_t min_blocks, double bytes_per_slot, double bytes_per_row, const std::string& what) override {
    const double total = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    check_memory((double)min_blocks * bytes_per_block + (double)S * bytes_per_slot + (double)prompt_rows * bytes_per_row,
                 what);
    const int64_t fit = (int64_t)(0.5 * total / bytes_per_block);
    return {S, prompt_rows, std::max(min_blocks, std::min(worst_blocks, fit))};
  }

  // --- matrix products ---
  void gemm(int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate, float* c, int64_t ldc,
            const float* bias, GemmMode) override {
    if (invariant_) matmul_invariant(pool_, M, N, K, alpha, a, b, accumulate, c, ldc, bias);
    else matmul(pool_, M, N, K, alpha, a, b, accumulate, c, ldc, bias);
  }

  void project(const float* x, int64_t N, int64_t I, const float* norm, float eps,
               const std::vector<Projection>& products, Epilogue epilogue) override {
    if (invariant_) return project_invariant(x, N, I, norm, eps, products, epilogue);
    std::vector<Product> ps;
    for (const Projection& p : products) {
      if (p.w.dtype != DType::F32 && p.w.dtype != DType::BF16) throw std::runtime_error("project: weights must be F32 or BF16");
      const bool bf16 = p.w.dtype == DType::BF16;
      ps.push_back({p.out, bf16 ? nullptr : static_cast<const float*>(p.w.p),
                    bf16 ? static_cast<const uint16_t*>(p.w.p) : nullptr, p.bias, p.O, p.accumulate});
    }
    std::function<void(int64_t, int64_t)> swiglu;
    if (epilogue == Epilogue::SwiGLU) {
      float *g = products[0].out, *u = products[1].out;
      const int64_t F = products[0].O;
      swiglu = [=](int64_t p, int64_t parts) {
        auto [lo, hi] = column_slice(F, p, parts);
        for (int64_t r = 0; r < N; r++) swiglu_serial(g + r * F + lo, g + r * F + lo, u + r * F + lo, hi - lo);
      };
    }
    matmul_many(pool_, x, N, I, ps, swiglu, norm, eps);
  }

  // --- layers ---
  void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) override {
    temper::embedding_forward(pool_, out, tokens, table, N, C);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) override {
    temper::embedding_backward(pool_, dtable, dout, tokens, N, C);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                       float eps) override {
    temper::rmsnorm_forward(pool_, out, rstd, x, w, N, C, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t N, int64_t C) override {
    temper::rmsnorm_backward(pool_, dx, dw, dout, x, w, rstd, N, C);
  }
  void rope(float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos, const float* sin,
            bool inverse) override {
    rope_apply(pool_, x, pos, N, heads, D, cos, sin, inverse);
  }

  // Nothing in the default mode: the backward computes the probabilities again, a block of rows at
  // a time (it would be [B, H, T, T] floats otherwise, 2.8 GB over 24 layers at 8 x 512). The
  // batch-invariant mode's row-by-row pair keeps the softmax itself.
  int64_t attention_saved(int64_t B, int64_t T, int64_t H) const override { return invariant_ ? B * H * T * T : 0; }
  void attention_forward(float* out, float* saved, const float* q, const float* k, const float* v, int64_t B,
                         int64_t T, int64_t H, int64_t KV, int64_t D) override {
    if (invariant_) attention_forward_rows(pool_, out, saved, q, k, v, B, T, H, KV, D);
    else temper::attention_forward(pool_, out, q, k, v, B, T, H, KV, D);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float*, const float* saved,
                          const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H, int64_t KV,
                          int64_t D) override {
    if (invariant_) attention_backward_rows(pool_, dq, dk, dv, dout, saved, q, k, v, B, T, H, KV, D);
    else temper::attention_backward(pool_, dq, dk, dv, dout, q, k, v, B, T, H, KV, D);
  }
  void rope_kv_write(float* q, float* k, const float* v, const int32_t* slot, const int32_t* pos, int64_t R, int64_t H,
                     int64_t KV, int64_t D, const float* cos, const float* sin, const KvLayer& c) override {
    f32_cache(c);
    temper::rope_kv_write(pool_, q, k, v, slot, pos, R, H, KV, D, cos, sin, c);
  }
  void attention_decode(float* out, const float* q, const KvLayer& c, const int32_t* slot, const int32_t* pos,
                        int64_t R, int64_t H, int64_t KV, int64_t D) override {
    f32_cache(c);
    attention_cached(pool_, out, q, c, slot, pos, R, H, KV, D);
  }

  void swiglu_forward(float* h, const float* g, const float* u, int64_t n) override {
    if (invariant_) swiglu_forward_grouped(pool_, h, g, u, n);
    else temper::swiglu_forward(pool_, h, g, u, n);
  }
  void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) override {
    if (invariant_) swiglu_backward_grouped(pool_, dg, du, dh, g, u, n);
    else temper::swiglu_backward(pool_, dg, du, dh, g, u, n);
  }
  void add(float* out, const float* a, const float* b, int64_t n) override {
    pool_.chunks(n, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; i++) out[i] = a[i] + b[i];
    });
  }
  void column_sums(float* dbias, const float* dy, int64_t N, int64_t O) override {
    temper::column_sums(pool_, dbias, dy, N, O);
  }
  void gather_rows(float* out, const float* in, const int64_t* idx, int64_t W, int64_t C) override {
    for (int64_t i = 0; i < W; i++) std::copy(in + idx[i] * C, in + (idx[i] + 1) * C, out + i * C);
  }
  void convert(void* out, DType dtype, const float* in, int64_t n) override {
    if (dtype != DType::BF16) throw std::runtime_error("convert: only BF16 copies are made");
    uint16_t* o = static_cast<uint16_t*>(out);
    pool_.chunks(n, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; i++) o[i] = bf16_bits(in[i]);
    });
  }

  void widen(float* out, const uint16_t* in, int64_t n) override {
    pool_.chunks(n, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; i++) out[i] = bf16_value(in[i]);
    });
  }

  void dora_norms(float* norm, float* colscale, const float* w, const float* dw, const float* mag, int64_t out,
                  int64_t in) override {
    temper::dora_norms(pool_, norm, colscale, w, dw, mag, out, in);
  }
  void dora_scale(float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out) override {
    temper::dora_scale(pool_, y, z, colscale, bias, N, out);
  }
  void dora_backward(float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                     const float* norm, int64_t N, int64_t out) override {
    temper::dora_backward(pool_, dz, dmag, dy, z, colscale, norm, N, out);
  }
  void scale_rows(float* x, const float* s, int64_t R, int64_t C) override { temper::scale_rows(pool_, x, s, R, C); }

  void logprob_forward(float* logprob, float* entropy, float* lse, const float* logits, const int32_t* target,
                       int64_t N, int64_t V) override {
    temper::logprob_forward(pool_, logprob, entropy, lse, logits, target, N, V);
  }
  void logprob_backward(float* dlogits, const float* logits, const float* lse, const int32_t* target, const float* w,
                        int64_t N, int64_t V) override {
    temper::logprob_backward(pool_, dlogits, logits, lse, target, w, N, V);
  }

  // Tensor by tensor, in order, so a gradient's norm is the same bits on every run.
  double sum_squares(const std::vector<std::pair<const float*, int64_t>>& tensors) override {
    double ss = 0;
    for (auto& [g, n] : tensors) ss += temper::sum_squares(pool_, g, n);
    return ss;
  }
  void adamw(float* p, uint16_t* p16, const float* g, float* m, float* v, int64_t n, float gscale, double lr,
             double b1, double b2, double eps, double wd, int64_t t) override {
    adamw_update(pool_, p, p16, g, m, v, n, gscale, lr, b1, b2, eps, wd, t);
  }

  void sample(int32_t* token, float* logprob, const float* logits, const int64_t* row_of, const double* u,
              int64_t picks, int64_t V, double temperature, int64_t top_k, double top_p) override {
    temper::sample(pool_, token, logprob, logits, row_of, u, picks, V, temperature, top_k, top_p);
  }

 private:
  ThreadPool pool_;
  const bool bf16_;
  const bool invariant_;  // batch-invariant mode: see matmul_invariant.cc

  // project's contract through the batch-invariant products: the rows normalised (per row, as
  // everywhere), each product on its own, then the SwiGLU elementwise.
  void project_invariant(const float* x, int64_t N, int64_t I, const float* norm, float eps,
                         const std::vector<Projection>& products, Epilogue epilogue) {
    std::vector<float> normed;
    if (norm) {
      normed.resize(N * I);
      temper::rmsnorm_forward(pool_, normed.data(), nullptr, x, norm, N, I, eps);
      x = normed.data();
    }
    for (const Projection& p : products)
      matmul_invariant(pool_, N, p.O, I, 1.0f, {x, DType::F32, I, false}, p.w.transposed(I), p.accumulate, p.out, p.O, p.bias);
    if (epilogue == Epilogue::SwiGLU) {
      const int64_t n = N * products[0].O;
      swiglu_forward_grouped(pool_, products[0].out, products[0].out, products[1].out, n);
    }
  }

  static void f32_cache(const KvLayer& c) {
    if (c.dtype != DType::F32) throw std::runtime_error("the CPU backend keeps its KV cache in F32");
  }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, bool bf16, bool batch_invariant) {
  return std::make_unique<CpuBackend>(threads, bf16, batch_invariant);
}

size_t trim_host_cache() { return host_cache().trim(); }

}  // namespace temper
