// Products with a bf16 weight and many rows (training, prefill; a decode step's few rows take
// gemm_small.cc): a block of B's columns is widened to fp32 on the thread that uses it, then
// OpenBLAS multiplies it like any fp32 operand. No fp32 copy of the whole matrix ever exists.
// Sums run in a fixed order (no dependence on thread timing), so a product is the same bits on
// every run with the same thread count.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"

namespace temper {

namespace {

// Sixteen lanes through GCC/Clang vector extensions: AVX-512 where -march has it, two AVX2
// halves where not, plain scalar code elsewhere.
typedef uint16_t h16 __attribute__((vector_size(32)));
typedef uint32_t u16x __attribute__((vector_size(64)));

// bf16 is the top half of an fp32: widening is a zero-extend and a shift.
inline void widen(float* out, const uint16_t* in, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    h16 h;
    std::memcpy(&h, in + i, sizeof h);
    u16x u = __builtin_convertvector(h, u16x) << 16;
    std::memcpy(out + i, &u, sizeof u);
  }
  for (; i < n; i++) out[i] = bf16_value(in[i]);
}

}  // namespace

int64_t bf16_block_columns(int64_t N, int64_t K, int parts) {
  // About 1 MB of widened fp32 (cache-resident while OpenBLAS packs it), at least 64 columns so
  // the repacking of A per block stays a few percent, and enough blocks for every thread.
  int64_t block = std::clamp<int64_t>((int64_t(1) << 18) / std::max<int64_t>(K, 1), 64, 512);
  const int64_t per_thread = (N + parts - 1) / parts;
  block = std::min(block, std::max<int64_t>(16, per_thread));
  return (block + 15) / 16 * 16;
}

void bf16_block(bool ta, bool tb, int64_t M, int64_t lo, int64_t hi, int64_t K, float alpha, const float* a,
                int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t width = hi - lo;
  if (width <= 0 || M <= 0) return;
  thread_local std::vector<float> block;
  if (block.size() < (size_t)(width * K)) block.resize((size_t)(width * K));
  if (tb) {
    // B[k][n] = W[n][k]: the block is W's rows [lo, hi), contiguous.
    for (int64_t n = lo; n < hi; n++) widen(block.data() + (n - lo) * K, b + n * ldb, K);
    gemm_serial(ta, true, M, width, K, alpha, a, lda, block.data(), K, beta, c + lo, ldc);
  } else {
    for (int64_t k = 0; k < K; k++) widen(block.data() + k * width, b + k * ldb + lo, width);
    gemm_serial(ta, false, M, width, K, alpha, a, lda, block.data(), width, beta, c + lo, ldc);
  }
}

}  // namespace temper
