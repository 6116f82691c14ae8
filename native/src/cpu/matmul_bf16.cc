// Products with a bf16 weight. The weight is widened to fp32 inside the product, a few rows or
// one block of columns at a time on the thread that uses them, so no fp32 copy of the whole
// matrix ever exists and each weight byte is read from memory once per product:
//   bf16_stream: few rows of activations (a decode step, R <= kStreamRows) against W^T. Four
//     weight rows are widened into a small buffer, then dotted with every activation row in
//     register tiles of 4 x 4; the activations stay in cache, the weight streams through once.
//   bf16_block:  many rows (training, prefill). A block of B's columns is widened, then
//     OpenBLAS multiplies it like any fp32 operand.
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
typedef float v16 __attribute__((vector_size(64)));
typedef uint16_t h16 __attribute__((vector_size(32)));
typedef uint32_t u16x __attribute__((vector_size(64)));

inline v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

// Halving adds: a fixed order, a few shuffles rather than sixteen extracts.
inline float hsum16(v16 v) {
  v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  v4f b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

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

// out[r][o] = beta * out[r][o] + alpha * Σ_k x[r][k] w[o][k] for RB rows of x and OB rows of w
// (fp32, widened), K columns each.
template <int RB, int OB>
void dot_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float alpha, float beta,
              float* out, int64_t ldo) {
  v16 acc[RB][OB];
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) acc[r][o] = v16{};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    // Every operand loaded once into a register, then RB x OB FMAs from registers only.
    v16 wv[OB], xv[RB];
    for (int o = 0; o < OB; o++) wv[o] = load16(w + o * ldw + k);
    for (int r = 0; r < RB; r++) xv[r] = load16(x + r * ldx + k);
    for (int r = 0; r < RB; r++)
      for (int o = 0; o < OB; o++) acc[r][o] += xv[r] * wv[o];
  }
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) {
      float s = hsum16(acc[r][o]);
      for (int64_t j = k; j < K; j++) s += x[r * ldx + j] * w[o * ldw + j];
      float& y = out[r * ldo + o];
      y = (beta != 0.0f ? y : 0.0f) + alpha * s;
    }
}

template <int RB>
void dot_group(int64_t rows, const float* x, int64_t ldx, const float* w, int64_t K, float alpha, float beta,
               float* out, int64_t ldo) {
  int64_t o = 0;
  for (; o + 4 <= rows; o += 4) dot_tile<RB, 4>(x, ldx, w + o * K, K, K, alpha, beta, out + o, ldo);
  for (; o < rows; o++) dot_tile<RB, 1>(x, ldx, w + o * K, K, K, alpha, beta, out + o, ldo);
}

}  // namespace

void bf16_stream(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                 const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc) {
  // A group of weight rows is widened once, then every 4 activation rows take their tiles against
  // the whole group while those rows are in L1; the group (16 rows) stays in L1/L2.
  constexpr int64_t kGroup = 16;
  thread_local std::vector<float> group;
  if (group.size() < (size_t)(kGroup * K)) group.resize((size_t)(kGroup * K));
  for (int64_t o = lo; o < hi; o += kGroup) {
    const int64_t rows = std::min(kGroup, hi - o);
    for (int64_t i = 0; i < rows; i++) widen(group.data() + i * K, w + (o + i) * ldw, K);
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) dot_group<4>(rows, x + r * ldx, ldx, group.data(), K, alpha, beta, c + r * ldc + o, ldc);
    const float* xr = x + r * ldx;
    float* cr = c + r * ldc + o;
    switch (R - r) {
      case 3: dot_group<3>(rows, xr, ldx, group.data(), K, alpha, beta, cr, ldc); break;
      case 2: dot_group<2>(rows, xr, ldx, group.data(), K, alpha, beta, cr, ldc); break;
      case 1: dot_group<1>(rows, xr, ldx, group.data(), K, alpha, beta, cr, ldc); break;
      default: break;
    }
  }
}

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
