// The CPU backend's kernels: the decoder's layers, each a forward/backward pair over row-major
// fp32 buffers, split over the model's pool. cpu/backend.cc binds them to the ops of
// backend/ops.h, whose comments give the contract; these are its reference implementation.
// Shapes use N rows (tokens), C hidden, F intermediate, V vocabulary, H query heads,
// KV key/value heads, D head dim. Backward functions *accumulate* (+=) into parameter
// gradients and into the input gradient unless the comment says "sets".
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "backend/ops.h"
#include "cpu/threadpool.h"

namespace temper {

// --- matmul.cc ---
// C[M,N] = alpha * op(A) · op(B) + beta * C, split over the pool's threads along M or N.
void gemm(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// The same on the calling thread only (inside work that is already parallel).
void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// C[M,N] = alpha * op(A) · op(B) + bias[N] (+ C when accumulate): the gemm op. A is fp32; a bf16 B
// is widened inside the product (matmul_bf16.cc), never copied whole.
void matmul(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate, float* c,
            int64_t ldc, const float* bias);
// Rows of C[M, N] (leading dimension ldc) set to bias, or bias added to them: what a product with
// beta 1 then adds to.
void add_bias_rows(ThreadPool& pool, float* c, int64_t ldc, int64_t M, int64_t N, const float* bias, bool accumulate);

// --- matmul_invariant.cc --- (the batch-invariant mode's products)
// gemm's contract, but a row's result does not depend on M or on the other rows: fixed tiles of
// rows and of the reduced dimension, the last ones padded in scratch, and column blocks fixed by N.
void gemm_invariant(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// matmul's contract through gemm_invariant; fp32 operands only.
void matmul_invariant(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate,
                      float* c, int64_t ldc, const float* bias);

// --- matmul_bf16.cc --- (products with a bf16 weight; beta 0 or 1)
// Columns [lo, hi) of C[M,N] = alpha * op(A) · op(B) + beta * C with B bf16, B's block widened
// first, on this thread.
void bf16_block(bool ta, bool tb, int64_t M, int64_t lo, int64_t hi, int64_t K, float alpha, const float* a,
                int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);
// The width of those blocks for N columns of depth K over `parts` threads (a multiple of 16).
int64_t bf16_block_columns(int64_t N, int64_t K, int parts);

// --- gemm_small.cc --- (a decode step's products: few rows against a weight read as W^T)
// Up to this many rows of activations, products with W^T take these kernels (weights read once
// per call for all rows); above, OpenBLAS or bf16_block.
constexpr int64_t kSmallRows = 64;
// c[r, o] = alpha * Σ_k x[r,k] w[o,k] + beta * c[r, o] for r < R, o in [lo, hi), on this thread
// (beta 0 or 1). Each row's result is the same bits whatever R and the other rows are.
void gemm_small_f32(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                    const float* w, int64_t ldw, float beta, float* c, int64_t ldc);
// bf16 w: gemm_small_bf16_widen (w widened to fp32 in registers, x as it is), or
// gemm_small_bf16_dot (x rounded to bf16, vdpbf16ps) when TEMPER_CPU_BF16_DOT=1 and the CPU has
// AVX512_BF16 (gemm_small_uses_dot_bf16).
void gemm_small_bf16(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                     const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc);
void gemm_small_bf16_dot(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                         const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc);
void gemm_small_bf16_widen(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                           const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc);
bool gemm_small_has_dot_bf16();
bool gemm_small_uses_dot_bf16();
// The dispatch: the kernel for the weight's dtype (w fp32, or w16 bf16 when w is null).
void gemm_small_cols(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                     const float* w, const uint16_t* w16, int64_t ldw, float beta, float* c, int64_t ldc);
// The gemm op's C = alpha * A · B + beta * C through these kernels, columns split over the pool,
// when it is theirs (A fp32 row order, M <= kSmallRows, B a weight read as W^T); false otherwise.
bool matmul_small(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, float beta, float* c,
                  int64_t ldc);

// dbias[O] += Σ_n dy[n, O]
void column_sums(ThreadPool& pool, float* dbias, const float* dy, int64_t N, int64_t O);

// Several products of one input in one parallel loop (fewer loops per decode step):
// out[N,O] = inp[N,I] · w[O,I]^T + bias (+ out when accumulate), each product cut into the same
// column slices; epilogue(p, parts) then runs on the thread that computed part p (may be null).
// With norm, inp is first RMS-normalised with those weights, by every thread for itself (the
// rows are few, so repeating that is cheaper than another loop).
struct Product {
  float* out;
  const float* w;      // fp32 weight [O, I], or null when w16 holds it
  const uint16_t* w16;  // bf16 weight [O, I]
  const float* bias;
  int64_t O;
  bool accumulate;
};
void matmul_many(ThreadPool& pool, const float* inp, int64_t N, int64_t I, const std::vector<Product>& products,
                 const std::function<void(int64_t, int64_t)>& epilogue, const float* norm = nullptr, float eps = 0);
// Columns [first, second) of O for part p of parts, in whole multiples of 16 but the last.
std::pair<int64_t, int64_t> column_slice(int64_t O, int64_t p, int64_t parts);

// --- embedding.cc ---
// out[N,C] = table[tokens[n], :]
void embedding_forward(ThreadPool& pool, float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C);
// dtable[tokens[n], :] += dout[n, :]
void embedding_backward(ThreadPool& pool, float* dtable, const float* dout, const int32_t* tokens, int64_t N,
                        int64_t C);

// --- rmsnorm.cc ---
// out[N,C] = x * rstd[n] * w[C],  rstd[n] = 1 / sqrt(mean_c x^2 + eps)     (rstd may be null)
void rmsnorm_forward(ThreadPool& pool, float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                     float eps);
// The same for rows [lo, hi) on the calling thread.
void rmsnorm_rows(float* out, float* rstd, const float* x, const float* w, int64_t lo, int64_t hi, int64_t C,
                  float eps);
// dx[N,C] += d out/dx · dout;  dw[C] += Σ_n dout * x * rstd (dw may be null), summed over the
// rows in row order, so it does not depend on how the rows are cut among threads.
void rmsnorm_backward(ThreadPool& pool, float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t C);

// --- rope.cc ---
// x[N, heads, D] rotated in place (rotate-half layout) at positions pos[N]; cos, sin [positions, D/2].
// inverse applies the transpose rotation: the backward of the forward.
void rope_apply(ThreadPool& pool, float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
                const float* sin, bool inverse);
// The same for rows [lo, hi) on the calling thread.
void rope_rows(float* x, const int32_t* pos, int64_t lo, int64_t hi, int64_t heads, int64_t D, const float* cos,
               const float* sin, bool inverse);

// --- attention.cc ---
// Causal self-attention over B sequences of T rows. q[B,T,H,D], k,v[B,T,KV,D] -> out[B,T,H,D].
// Nothing is kept: backward computes each block of probabilities again from q and k.
void attention_forward(ThreadPool& pool, float* out, const float* q, const float* k, const float* v, int64_t B,
                       int64_t T, int64_t H, int64_t KV, int64_t D);
// Sets dq[B,T,H,D], dk, dv[B,T,KV,D] from dout[B,T,H,D].
void attention_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
// The batch-invariant mode's pair: the same contracts, computed per query row in
// attention_cached's arithmetic (a sequence's rows do not depend on T or on other sequences).
void attention_forward_rows(ThreadPool& pool, float* out, float* att, const float* q, const float* k, const float* v,
                            int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D);
void attention_backward_rows(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout, const float* att,
                             const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H,
                             int64_t KV, int64_t D);
// One query row per r against a paged KV cache (ops.h, KvLayer; F32): row r reads slot slot[r],
// positions [0, pos[r]], through the block table.  q[R,H,D] -> out[R,H,D].
void attention_cached(ThreadPool& pool, float* out, const float* q, const KvLayer& cache, const int32_t* slot,
                      const int32_t* pos, int64_t R, int64_t H, int64_t KV, int64_t D);
// Rows' q[R,H,D] and k[R,KV,D] rotated at pos[r], then k and v written into the cache at
// (slot[r], pos[r]): one parallel loop.
void rope_kv_write(ThreadPool& pool, float* q, float* k, const float* v, const int32_t* slot, const int32_t* pos,
                   int64_t R, int64_t H, int64_t KV, int64_t D, const float* cos, const float* sin,
                   const KvLayer& cache);

// --- swiglu.cc ---
// h[n] = silu(g[n]) * u[n] over n elements
void swiglu_forward(ThreadPool& pool, float* h, const float* g, const float* u, int64_t n);
void swiglu_serial(float* h, const float* g, const float* u, int64_t n);
// sets dg, du from dh
void swiglu_backward(ThreadPool& pool, float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n);

// The same two with every element computed the vector way (a last group under 8 zero-padded): an
// element's result does not depend on n or the chunks (batch-invariant mode).
void swiglu_forward_grouped(ThreadPool& pool, float* h, const float* g, const float* u, int64_t n);
void swiglu_backward_grouped(ThreadPool& pool, float* dg, float* du, const float* dh, const float* g, const float* u,
                             int64_t n);

// --- logprob.cc ---
// Rows with target[n] >= 0: lse[n] = logsumexp(logits[n,:]), logprob[n] = logits[n,target] - lse[n],
// entropy[n] = lse[n] - Σ_j p_j logits[n,j] (entropy may be null). Rows with target < 0 give 0.
void logprob_forward(ThreadPool& pool, float* logprob, float* entropy, float* lse, const float* logits,
                     const int32_t* target, int64_t N, int64_t V);
// dlogits[n,:] = w[n] * (onehot(target[n]) - softmax(logits[n,:])); may alias logits (sets).
void logprob_backward(ThreadPool& pool, float* dlogits, const float* logits, const float* lse, const int32_t* target,
                      const float* w, int64_t N, int64_t V);

// --- adamw.cc ---
// torch.optim.AdamW on n values: p *= 1 - lr*wd; m, v updated from g * gscale (gradient clipping);
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps); p16 (may be null) = bf16(p).
void adamw_update(ThreadPool& pool, float* p, uint16_t* p16, const float* g, float* m, float* v, int64_t n,
                  float gscale, double lr, double b1, double b2, double eps, double wd, int64_t t);
// Σ g^2 in double.
double sum_squares(ThreadPool& pool, const float* g, int64_t n);

// --- dora.cc ---
// norm[o] = ‖w[o,:] + dw[o,:]‖ (dw may be null), summed in double; colscale[o] = mag[o] / norm[o].
void dora_norms(ThreadPool& pool, float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                int64_t out, int64_t in);
// z = y (z may be null); y[n,o] = y[n,o] * colscale[o] + bias[o] (bias may be null).
void dora_scale(ThreadPool& pool, float* y, float* z, const float* colscale, const float* bias, int64_t N,
                int64_t out);
// Sets dz = dy * colscale;  dmag[o] += Σ_n dy * z / norm[o] (dmag may be null).
void dora_backward(ThreadPool& pool, float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                   const float* norm, int64_t N, int64_t out);
// x[r, :] *= s[r]
void scale_rows(ThreadPool& pool, float* x, const float* s, int64_t R, int64_t C);

// --- sample.cc ---
// The sample op (backend/ops.h): one pick per task, each from its logits row.
void sample(ThreadPool& pool, int32_t* token, float* logprob, const float* logits, const int64_t* row_of,
            const double* u, int64_t picks, int64_t V, double temperature, int64_t top_k, double top_p);

}  // namespace temper
