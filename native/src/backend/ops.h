// The interface the model is written against: memory in a backend's address space, and every
// layer of the decoder as an op. src/cpu implements it with OpenBLAS and the engine's own threads
// (each op there is the reference the CUDA one is checked against), src/cuda with the engine's
// kernels. The model (src/model) holds only backend pointers, and reads or writes their memory
// only through upload / download, or host_address() where the backend offers it.
//
// Pointers are backend addresses (host memory on the CPU, device memory on CUDA), integer and
// index arrays included; sizes count elements unless they say bytes. Shapes use N rows (tokens),
// C hidden, F intermediate, V vocabulary, H query heads, KV key/value heads, D head dim, R rows
// of a decode step. Backward ops *accumulate* (+=) into parameter gradients and *set* input
// gradients unless the comment says otherwise. Ops may be queued (CUDA runs them in order on one
// stream); download() and every op that returns a host value wait for all work queued before.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/dtype.h"

namespace temper {

// A matrix operand of gemm: element (i, j) of the logical matrix sits at p[i*ld + j], or at
// p[j*ld + i] when trans (row-major BLAS convention). dtype F32 or BF16.
struct Mat {
  const void* p;
  DType dtype;
  int64_t ld;
  bool trans;
};

// A weight as products read it: fp32 values, or a compute copy in the backend's compute dtype.
// Weights are stored [out, in]; y = x W^T reads them transposed.
struct Weight {
  const void* p;
  DType dtype;
  Mat transposed(int64_t in) const { return {p, dtype, in, true}; }
  Mat as_is(int64_t in) const { return {p, dtype, in, false}; }
};

// One layer's paged KV cache: k and v are [blocks, KV, block, D] in dtype, a pool of blocks of
// `block` positions each. A slot (one completion) reads and writes its positions through its row
// of the block table: position p of slot s is in block table[s * (cap / block) + p / block], at
// p % block. Slots may share blocks (a prompt's samples share its prefill).
struct KvLayer {
  void* k;
  void* v;
  DType dtype;
  int64_t slots, cap;     // cap: the positions a slot's table row addresses, a multiple of block
  int64_t block;          // positions per block
  const int32_t* table;   // [slots, cap / block] block ids (backend memory)
};

// One product of project(): out[N,O] = x · w^T + bias (+ out when accumulate); bias may be null.
struct Projection {
  float* out;
  Weight w;
  const float* bias;
  int64_t O;
  bool accumulate;
};
// What project() applies after its products. SwiGLU: out0 = silu(out0) * out1 (products 0 and 1
// have the same width).
enum class Epilogue { None, SwiGLU };

// How a product may be summed. Train: in a fixed order (the same bits every run). Decode: a
// generation step, where the backend may give up the fixed order for speed (CUDA splits K).
// Exact: in fp32 throughout, even where the backend rounds operands to bf16 (merging weights).
enum class GemmMode { Train, Decode, Exact };

class Backend {
 public:
  virtual ~Backend() = default;
  // "cpu", or "cuda: <device> (sm_XY, bf16|fp32)".
  virtual std::string describe() const = 0;
  // What the compute copies of base weights and the KV cache are held in: F32 means no copies
  // (products read the fp32 weights), BF16 means bf16 copies refreshed by every update.
  virtual DType compute_dtype() const = 0;
  // What the KV cache of generate is held in (the CPU keeps F32 whatever its compute dtype).
  virtual DType kv_dtype() const { return compute_dtype(); }
  // Positions per KV cache block: small enough that a completion wastes little of its last block,
  // large enough that a block's rows of one kv head (block x head_dim, contiguous) stream.
  virtual int64_t kv_block() const { return 16; }
  // Why this backend cannot run attention with these heads ("" when it can).
  virtual std::string attention_unsupported(int64_t H, int64_t KV, int64_t D) const = 0;

  // --- memory ---
  // Scratch (activations, KV caches, a step's buffers) is taken from a cache of released blocks,
  // because fresh pages or device allocations cost more than the work done in them; resident
  // memory (parameters, their gradients and moments) bypasses the cache. Contents are
  // unspecified; *held is what was handed out (at least bytes), to be given back to release().
  // Both throw an error naming `what` when the memory is not there. Buffer (buffer.h) wraps them.
  virtual void* alloc(size_t bytes, bool resident, const char* what, size_t* held) = 0;
  virtual void release(void* p, size_t held, bool resident) = 0;
  // Where the host may read and write this backend memory directly (the CPU's own), else null.
  virtual void* host_address(void* p) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;  // src may be reused on return
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  // rows blocks of `width` bytes: src + i * spitch -> dst + i * dpitch.
  virtual void copy_rows(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, int64_t rows) = 0;
  // fn(i) for every i in [0, n), on the host, on the backend's threads where it has them (host
  // work outside the ops: drawing a model's initial weights). Serial unless overridden.
  virtual void host_parallel(int64_t n, const std::function<void(int64_t)>& fn) {
    for (int64_t i = 0; i < n; i++) fn(i);
  }
  // Refuses, before it starts, work that would need more memory than this backend has:
  // "<what> would need ..." with the figures.
  virtual void check_memory(double bytes, const std::string& what) = 0;
  // How generate batches S completions (n samples per prompt, prompt_rows prompt tokens in all,
  // the longest `longest`): how many hold a KV-cache slot (a block-table row) at once, how many
  // prompt rows a step may prefill beyond its first prompt, and how many KV-cache blocks of
  // bytes_per_block the pool holds (worst_blocks would hold every completion at its longest; the
  // pool is never more, and may be less: completions take blocks as they grow, and the scheduler
  // preempts when they run out). The CPU gives every completion a slot and prefills every prompt
  // at once, its pool what fits in half of the machine's memory (refused when not even one
  // completion's worst case fits); CUDA fills half of the device memory left with blocks and
  // prefills at most 4096 rows a step.
  struct Batching {
    int64_t slots, prefill_rows, blocks;
  };
  // A running completion also holds bytes_per_slot (its decode row and row of logits), a prefill
  // row bytes_per_row (its activations).
  virtual Batching batching(int64_t S, int64_t n, int64_t prompt_rows, int64_t longest, double bytes_per_block,
                            int64_t worst_blocks, int64_t min_blocks, double bytes_per_slot, double bytes_per_row,
                            const std::string& what) = 0;

  // --- matrix products ---
  // C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + bias[N] (+ C when accumulate). A is fp32 (the
  // activations or gradients); B fp32 or bf16 (fp32 for Exact).
  virtual void gemm(int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate, float* c,
                    int64_t ldc, const float* bias, GemmMode mode) = 0;
  // Several products of one input x[N,I] in one pass (a decode step's fusions: q/k/v, gate/up
  // with SwiGLU, o and down adding into the residual). With norm, x is RMS-normalised with those
  // weights first (not written back). Summed as gemm's Decode.
  virtual void project(const float* x, int64_t N, int64_t I, const float* norm, float eps,
                       const std::vector<Projection>& products, Epilogue epilogue) = 0;

  // --- embedding ---
  // out[N,C] = table[tokens[n], :]
  virtual void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) = 0;
  // dtable[tokens[n], :] += dout[n, :]
  virtual void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N,
                                  int64_t C) = 0;

  // --- RMSNorm ---
  // out[N,C] = x * rstd[n] * w[C],  rstd[n] = 1 / sqrt(mean_c x^2 + eps). rstd may be null; out may be x.
  virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                               float eps) = 0;
  // dx[N,C] += d out / dx · dout;  dw[C] += Σ_n dout * x * rstd (dw may be null).
  virtual void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                                const float* rstd, int64_t N, int64_t C) = 0;

  // --- RoPE ---
  // x[N, heads, D] rotated in place (rotate-half layout) at positions pos[N]; cos, sin
  // [positions, D/2]. inverse applies the transpose rotation: the backward of the forward.
  virtual void rope(float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
                    const float* sin, bool inverse) = 0;

  // --- attention ---
  // Causal GQA over B sequences of T rows (query head h reads key/value head h / (H / KV)):
  // q[B,T,H,D], k,v[B,T,KV,D] -> out[B,T,H,D]. saved: what backward needs besides the inputs and
  // out, attention_saved(B, T, H) floats (none on the CPU, whose backward computes the softmax
  // again; its log-normaliser on CUDA).
  virtual int64_t attention_saved(int64_t B, int64_t T, int64_t H) const = 0;
  virtual void attention_forward(float* out, float* saved, const float* q, const float* k, const float* v,
                                 int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) = 0;
  // Sets dq[B,T,H,D], dk, dv[B,T,KV,D] from dout[B,T,H,D].
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                                  const float* saved, const float* q, const float* k, const float* v, int64_t B,
                                  int64_t T, int64_t H, int64_t KV, int64_t D) = 0;
  // A decode step's rows: q[R,H,D] and k[R,KV,D] rotated at pos[R], then k and v[R,KV,D] written
  // into the cache at (slot[r], pos[r]) through the block table.
  virtual void rope_kv_write(float* q, float* k, const float* v, const int32_t* slot, const int32_t* pos, int64_t R,
                             int64_t H, int64_t KV, int64_t D, const float* cos, const float* sin,
                             const KvLayer& cache) = 0;
  // One query row per r against its cache slot, positions [0, pos[r]] read through the block
  // table: q[R,H,D] -> out[R,H,D].
  virtual void attention_decode(float* out, const float* q, const KvLayer& cache, const int32_t* slot,
                                const int32_t* pos, int64_t R, int64_t H, int64_t KV, int64_t D) = 0;

  // --- elementwise ---
  // h = silu(g) * u over n elements (h may be g).
  virtual void swiglu_forward(float* h, const float* g, const float* u, int64_t n) = 0;
  // Sets dg, du from dh (dg and du may be g and u: training overwrites them in place).
  virtual void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) = 0;
  // out = a + b over n elements (out may be a).
  virtual void add(float* out, const float* a, const float* b, int64_t n) = 0;
  // dbias[O] += Σ_n dy[n, O]
  virtual void column_sums(float* dbias, const float* dy, int64_t N, int64_t O) = 0;
  // out[i, :] = in[idx[i], :] for W rows of C
  virtual void gather_rows(float* out, const float* in, const int64_t* idx, int64_t W, int64_t C) = 0;
  // out[n] = in[n] rounded to dtype (the compute copy of a weight; dtype BF16).
  virtual void convert(void* out, DType dtype, const float* in, int64_t n) = 0;
  // out[n] = the bf16 in[n] as fp32 (a weight whose fp32 master was dropped, for the rare calls
  // that need its values: merging, exporting, DoRA's norms). Through the host unless overridden.
  virtual void widen(float* out, const uint16_t* in, int64_t n) {
    std::vector<uint16_t> h((size_t)n);
    std::vector<float> f((size_t)n);
    download(h.data(), in, (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) f[i] = bf16_value(h[i]);
    upload(out, f.data(), (size_t)n * 4);
  }

  // --- DoRA (a learned magnitude per output row of W + s B A; the norm a constant in backward) ---
  // norm[o] = ‖w[o,:] + dw[o,:]‖ (dw may be null); colscale[o] = mag[o] / norm[o] (both may be null).
  virtual void dora_norms(float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                          int64_t out, int64_t in) = 0;
  // z = y (when z is not null); y[n,o] = y[n,o] * colscale[o] + bias[o] (bias may be null).
  virtual void dora_scale(float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out) = 0;
  // Sets dz = dy * colscale;  dmag[o] += Σ_n dy * z / norm[o] (dmag may be null).
  virtual void dora_backward(float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                             const float* norm, int64_t N, int64_t out) = 0;
  // x[r, :] *= s[r] for R rows of C.
  virtual void scale_rows(float* x, const float* s, int64_t R, int64_t C) = 0;

  // --- log-softmax gathered at the targets ---
  // Rows with target[n] >= 0: lse[n] = logsumexp(logits[n,:]), logprob[n] = logits[n,target] - lse,
  // entropy[n] = lse - Σ_j p_j logits[n,j] (entropy may be null). Rows with target < 0 give 0.
  virtual void logprob_forward(float* logprob, float* entropy, float* lse, const float* logits,
                               const int32_t* target, int64_t N, int64_t V) = 0;
  // Sets dlogits[n,:] = w[n] * (onehot(target[n]) - softmax(logits[n,:])); dlogits may be logits.
  virtual void logprob_backward(float* dlogits, const float* logits, const float* lse, const int32_t* target,
                                const float* w, int64_t N, int64_t V) = 0;

  // --- AdamW ---
  // Σ g^2 over all the tensors (pointer, count), accumulated in double; a host value.
  virtual double sum_squares(const std::vector<std::pair<const float*, int64_t>>& tensors) = 0;
  // torch.optim.AdamW at step t on n values: p *= 1 - lr*wd; m, v updated from g * gscale
  // (clipping); p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). p16: the weight's
  // bf16 compute copy, refreshed from the new p (may be null).
  virtual void adamw(float* p, uint16_t* p16, const float* g, float* m, float* v, int64_t n, float gscale,
                     double lr, double b1, double b2, double eps, double wd, int64_t t) = 0;

  // --- sampling ---
  // For pick i, from logits row row_of[i] of [*, V]: greedy at temperature 0; otherwise
  // softmax(logits / temperature) cut to the top_k largest, then to the smallest top set holding
  // top_p of what is left (HF's order; ties at a cut kept), drawn with u[i] in [0, 1) walking the
  // kept tokens in vocabulary order. logprob[i]: the unmodified model's log-probability of the
  // pick (temperature 1, no cut), what logprob_forward gives for the same token.
  virtual void sample(int32_t* token, float* logprob, const float* logits, const int64_t* row_of, const double* u,
                      int64_t picks, int64_t V, double temperature, int64_t top_k, double top_p) = 0;
};

}  // namespace temper
