// The CUDA backend's kernels, one file per family, as launchers on a stream; backend.cu binds
// them to the ops of backend/ops.h (whose comments give the contract, and whose CPU versions are
// the reference). Activations and gradients are fp32 in device memory; weights are read as bf16
// (or fp32 in fp32 mode) and every product accumulates in fp32. Shapes use ops.h's letters.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/common.cuh"

namespace temper {
namespace cuda {

// --- gemm.cu ---
// One operand of a product: element (i, j) of the logical matrix sits at p[i*ld + j], or at
// p[j*ld + i] when trans.
struct Operand {
  const void* p;
  bool is_bf16;
  int64_t ld;
  bool trans;
};
// C[M,N] = alpha * A[M,K] · B[K,N] + bias[N] (+ C when accumulate). fp32 selects the SIMT fp32
// kernel (checking mode); otherwise tensor cores with bf16 operands (fp32 ones are rounded to
// bf16 on their way into shared memory) and fp32 accumulation. split_ok lets a skinny product be
// cut along K and summed with atomics (order-dependent rounding; generation only).
void gemm(cudaStream_t s, bool fp32, int sms, int64_t M, int64_t N, int64_t K, float alpha, Operand a, Operand b,
          bool accumulate, float* C, int64_t ldc, const float* bias, bool split_ok = false);
// y[N,O] = x[N,I] · w[O,I]^T + bias: the projection every Linear does.
inline Operand rows(const float* x, int64_t ld) { return {x, false, ld, false}; }
inline Operand weight_t(const void* w, bool is_bf16, int64_t in) { return {w, is_bf16, in, true}; }

// --- elementwise.cu ---
void embedding_forward(cudaStream_t s, float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C);
void embedding_backward(cudaStream_t s, float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C);
// out = x * rstd * w, rstd[n] = 1/sqrt(mean x^2 + eps) (rstd may be null)
void rmsnorm_forward(cudaStream_t s, float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                     float eps);
// dx += ..., dw += ... (dw may be null)
void rmsnorm_backward(cudaStream_t s, float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t C);
// x[N, heads, D] rotated in place at pos[N]; cos/sin [positions, D/2].
void rope(cudaStream_t s, float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
          const float* sin, bool inverse);
void swiglu_forward(cudaStream_t s, float* h, const float* g, const float* u, int64_t n);
void swiglu_backward(cudaStream_t s, float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n);
// out[i] = a[i] + b[i]  (out may alias a)
void add(cudaStream_t s, float* out, const float* a, const float* b, int64_t n);
// dbias[O] += Σ_n dy[n, O]
void column_sums(cudaStream_t s, float* dbias, const float* dy, int64_t N, int64_t O);
void to_bf16(cudaStream_t s, bf16* out, const float* in, int64_t n);
// out[i, :] = in[idx[i], :] for W rows of C
void gather_rows(cudaStream_t s, float* out, const float* in, const int64_t* idx, int64_t W, int64_t C);

// --- elementwise.cu, DoRA ---
// norm[o] = ‖w[o,:] + dw[o,:]‖, colscale[o] = mag[o] / norm[o] (dw, norm, colscale may be null)
void dora_norms(cudaStream_t s, float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                int64_t out, int64_t in);
// z = y (saved when z non-null); y[n,o] = y[n,o] * colscale[o] + bias[o]
void dora_scale(cudaStream_t s, float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out);
// x[r, :] *= scale[r] for R rows of C
void scale_rows(cudaStream_t s, float* x, const float* scale, int64_t R, int64_t C);
// dz = dy * colscale;  dmag[o] += Σ_n dy*z / norm[o]  (dmag may be null)
void dora_backward(cudaStream_t s, float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                   const float* norm, int64_t N, int64_t out);

// --- attention.cu ---
// Causal GQA flash attention over B sequences of T: q[B,T,H,D], k,v[B,T,KV,D] -> out[B,T,H,D],
// lse[B,H,T] (the softmax's log-normaliser, all backward needs besides the inputs).
void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
// Sets dq, dk, dv. scratch: B*H*T floats.
void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, float* scratch, const float* dout,
                        const float* out, const float* lse, const float* q, const float* k, const float* v,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
// Writes rows' k, v[R, KV, D] into the paged cache (pool [blocks, KV, block, D], block table
// [slots, width]) at (slot[r], pos[r]).
template <typename KVT>
void kv_write(cudaStream_t s, KVT* kcache, KVT* vcache, const float* k, const float* v, const int32_t* slot,
              const int32_t* pos, int64_t R, const int32_t* table, int64_t width, int64_t block, int64_t KV,
              int64_t D);
// One query row per r against its slot's paged cache, positions [0, pos[r]]. q[R,H,D] -> out[R,H,D].
template <typename KVT>
void attention_decode(cudaStream_t s, float* out, const float* q, const KVT* kcache, const KVT* vcache,
                      const int32_t* slot, const int32_t* pos, int64_t R, const int32_t* table, int64_t width,
                      int64_t block, int64_t H, int64_t KV, int64_t D);

// --- logprob.cu ---
// Rows with target >= 0: lse, logprob = logit[target] - lse, entropy (may be null); others 0.
void logprob_forward(cudaStream_t s, float* logprob, float* entropy, float* lse, const float* logits,
                     const int32_t* target, int64_t N, int64_t V);
// dlogits[n,:] = w[n] * (onehot(target) - softmax(logits)), in place allowed.
void logprob_backward(cudaStream_t s, float* dlogits, const float* logits, const float* lse, const int32_t* target,
                      const float* w, int64_t N, int64_t V);

// --- sample.cu ---
// Per row r of logits[R,V] (row row_of[i] for pick i): the CPU engine's pick() — greedy at
// temperature 0, else top-k then top-p cut by bisection on p, drawn with u[i] in [0,1).
void sample(cudaStream_t s, int32_t* token, float* logprob, const float* logits, const int64_t* row_of,
            const double* u, int64_t picks, int64_t V, float temperature, int64_t top_k, float top_p);

// --- adamw.cu ---
// torch AdamW on n values as src/cpu/adamw.cc does it (step = lr / bc1, decay = 1 - lr wd,
// inv_bc2 = 1 / sqrt(1 - b2^t)); p32 the fp32 master, p16 its bf16 copy, refreshed (may be null).
void adamw(cudaStream_t s, float* p32, bf16* p16, const float* g, float* m, float* v, int64_t n, float gscale,
           float step, float decay, float b1, float b2, float eps, float inv_bc2);
// *acc += Σ g^2 (double accumulation)
void sum_squares(cudaStream_t s, double* acc, const float* g, int64_t n);

}  // namespace cuda
}  // namespace temper
