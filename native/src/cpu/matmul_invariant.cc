// Batch-invariant fp32 products: a row's result is the same bits whatever else the call holds.
//
// OpenBLAS picks kernels and blocking from the shape, and the pool's slicing (matmul.cc) depends
// on it too; worse, inside one call a row's rounding depends on its place in the kernel's
// register block (measured on Haswell's sgemm: rows two apart in a group of 6 round differently,
// and column-major, lanes 0-7 and 8-15 of 16). So this mode does not use OpenBLAS: each element
// of C is its own sum over k in ascending order (8 lanes then their sum, for a dot product; one
// lane per column, for a row update), and rows are computed alike wherever they sit. Rows of
// zeros beside a sequence add exact zeros to a reduction over tokens (a weight gradient).
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace temper {

namespace {

constexpr int64_t kRows = 8;        // rows of C per task: they share each read of B
constexpr int64_t kColumns = 256;   // columns of C per task

}  // namespace

void gemm_invariant(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const int64_t row_tiles = (M + kRows - 1) / kRows, col_tiles = (N + kColumns - 1) / kColumns;
  pool.run(row_tiles * col_tiles, [&](int64_t t) {
    const int64_t r0 = t / col_tiles * kRows, c0 = t % col_tiles * kColumns;
    const int64_t rn = std::min(kRows, M - r0), cn = std::min(kColumns, N - c0);
    thread_local std::vector<float> rows, acc;
    // op(A)'s rows of this tile, contiguous.
    const float* a = A + r0 * lda;
    int64_t lda_t = lda;
    if (ta) {
      rows.resize(rn * K);
      for (int64_t r = 0; r < rn; r++)
        for (int64_t k = 0; k < K; k++) rows[r * K + k] = A[k * lda + r0 + r];
      a = rows.data(), lda_t = K;
    }
    acc.assign(rn * cn, 0.0f);
    if (tb) {
      for (int64_t r = 0; r < rn; r++)
        for (int64_t n = 0; n < cn; n++) acc[r * cn + n] = dot8(a + r * lda_t, B + (c0 + n) * ldb, K);
    } else {
      const int64_t cn8 = cn & ~int64_t(7);
      for (int64_t k = 0; k < K; k++) {
        const float* bk = B + k * ldb + c0;
        for (int64_t r = 0; r < rn; r++) {
          float* o = acc.data() + r * cn;
          const float x = a[r * lda_t + k];
          const v8 xv = splat8(x);
          for (int64_t n = 0; n < cn8; n += 8) store8(o + n, load8(o + n) + xv * load8(bk + n));
          for (int64_t n = cn8; n < cn; n++) o[n] += x * bk[n];
        }
      }
    }
    for (int64_t r = 0; r < rn; r++) {
      float* c = C + (r0 + r) * ldc + c0;
      const float* s = acc.data() + r * cn;
      if (beta == 0) for (int64_t n = 0; n < cn; n++) c[n] = alpha * s[n];
      else for (int64_t n = 0; n < cn; n++) c[n] = beta * c[n] + alpha * s[n];
    }
  });
}

void matmul_invariant(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate,
                      float* c, int64_t ldc, const float* bias) {
  if (a.dtype != DType::F32 || b.dtype != DType::F32)
    throw std::runtime_error("gemm: batch-invariant mode takes fp32 operands only (precision \"fp32\")");
  if (bias) add_bias_rows(pool, c, ldc, M, N, bias, accumulate);
  gemm_invariant(pool, a.trans, b.trans, M, N, K, alpha, static_cast<const float*>(a.p), a.ld,
                 static_cast<const float*>(b.p), b.ld, bias || accumulate ? 1.0f : 0.0f, c, ldc);
}

}  // namespace temper
