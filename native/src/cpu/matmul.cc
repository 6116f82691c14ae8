// Matrix products. OpenBLAS is kept single-threaded (addon init) and each thread of the
// pool runs its own slice: one scheduler for GEMMs and the elementwise work around them.
#include <cblas.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cpu/aligned.h"
#include "cpu/kernels.h"

namespace temper {

void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M, (blasint)N,
              (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

void gemm(ThreadPool& pool, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t parts = pool.size();
  if (parts == 1 || M * N * K < (1 << 18)) {
    gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Slices are multiples of 16 rows/columns so every slice keeps OpenBLAS's full-width kernels.
  // Long dimensions get up to four slices per thread, none under 1024: when another process takes
  // a core for a while, the thread that keeps running picks up the slow one's remaining slices
  // instead of waiting. Each slice packs its share of the other operand again, so slices of 256
  // rows cost ~8% of a training step when the cores are free; hence the floor.
  bool split_m = M >= N;
  int64_t len = split_m ? M : N, units = (len + 15) / 16;
  parts = std::max(parts, std::min(parts * 4, len / 1024));
  parts = std::min(parts, units);
  pool.run(parts, [&](int64_t p) {
    int64_t lo = units * p / parts * 16, hi = std::min(len, units * (p + 1) / parts * 16);
    if (lo >= hi) return;
    if (split_m) {
      const float* a = ta ? A + lo : A + lo * lda;
      gemm_serial(ta, tb, hi - lo, N, K, alpha, a, lda, B, ldb, beta, C + lo * ldc, ldc);
    } else {
      const float* b = tb ? B + lo * ldb : B + lo;
      gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda, b, ldb, beta, C + lo, ldc);
    }
  });
}

void add_bias_rows(ThreadPool& pool, float* c, int64_t ldc, int64_t M, int64_t N, const float* bias, bool accumulate) {
  pool.chunks(M, [&](int64_t lo, int64_t hi, int) {
    for (int64_t m = lo; m < hi; m++) {
      float* row = c + m * ldc;
      if (accumulate) for (int64_t n = 0; n < N; n++) row[n] += bias[n];
      else std::copy(bias, bias + N, row);
    }
  });
}

void matmul(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, bool accumulate, float* c,
            int64_t ldc, const float* bias) {
  if (a.dtype != DType::F32) throw std::runtime_error("gemm: the CPU backend takes operand A in F32 only");
  if (b.dtype != DType::F32 && b.dtype != DType::BF16) throw std::runtime_error("gemm: operand B must be F32 or BF16");
  if (bias) add_bias_rows(pool, c, ldc, M, N, bias, accumulate);
  const float beta = bias || accumulate ? 1.0f : 0.0f;
  if (matmul_small(pool, M, N, K, alpha, a, b, beta, c, ldc)) return;
  if (b.dtype == DType::F32) {
    gemm(pool, a.trans, b.trans, M, N, K, alpha, static_cast<const float*>(a.p), a.ld, static_cast<const float*>(b.p),
         b.ld, beta, c, ldc);
    return;
  }
  const uint16_t* w = static_cast<const uint16_t*>(b.p);
  const float* x = static_cast<const float*>(a.p);
  // Blocks of B's columns, each widened on its own thread just before its product.
  const int64_t block = bf16_block_columns(N, K, pool.size());
  const int64_t blocks = (N + block - 1) / block;
  pool.run(blocks, [&](int64_t i) {
    const int64_t lo = i * block, hi = std::min(N, lo + block);
    bf16_block(a.trans, b.trans, M, lo, hi, K, alpha, x, a.ld, w, b.ld, beta, c, ldc);
  });
}

std::pair<int64_t, int64_t> column_slice(int64_t O, int64_t p, int64_t parts) {
  int64_t units = (O + 15) / 16;
  return {std::min(O, units * p / parts * 16), std::min(O, units * (p + 1) / parts * 16)};
}

void matmul_many(ThreadPool& pool, const float* inp, int64_t N, int64_t I, const std::vector<Product>& products,
                 const std::function<void(int64_t, int64_t)>& epilogue, const float* norm, float eps) {
  const int64_t parts = pool.size();
  pool.run(parts, [&](int64_t p) {
    thread_local AlignedFloats normed;
    const float* x = inp;
    if (norm) {
      float* xn = normed.get((size_t)(N * I));
      rmsnorm_rows(xn, nullptr, inp, norm, 0, N, I, eps);
      x = xn;
    }
    for (const Product& prod : products) {
      auto [lo, hi] = column_slice(prod.O, p, parts);
      if (lo >= hi) continue;
      if (prod.bias) {
        for (int64_t n = 0; n < N; n++) {
          float* o = prod.out + n * prod.O;
          for (int64_t c = lo; c < hi; c++) o[c] = (prod.accumulate ? o[c] : 0.0f) + prod.bias[c];
        }
      }
      const float beta = prod.bias || prod.accumulate ? 1.0f : 0.0f;
      // A decode step's few rows: each weight row read once for all of them (gemm_small.cc).
      if (N <= kSmallRows) {
        gemm_small_cols(N, lo, hi, I, 1.0f, x, I, prod.w, prod.w16, I, beta, prod.out, prod.O);
        continue;
      }
      if (prod.w16) {
        const int64_t block = bf16_block_columns(hi - lo, I, 1);
        for (int64_t c = lo; c < hi; c += block)
          bf16_block(false, true, N, c, std::min(hi, c + block), I, 1.0f, x, I, prod.w16, I, beta, prod.out, prod.O);
        continue;
      }
      gemm_serial(false, true, N, hi - lo, I, 1.0f, x, I, prod.w + lo * I, I, beta, prod.out + lo, prod.O);
    }
    if (epilogue) epilogue(p, parts);
  });
}

void column_sums(ThreadPool& pool, float* dbias, const float* dy, int64_t N, int64_t O) {
  pool.chunks(O, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = 0; n < N; n++) {
      const float* d = dy + n * O;
      for (int64_t o = lo; o < hi; o++) dbias[o] += d[o];
    }
  });
}

}  // namespace temper
