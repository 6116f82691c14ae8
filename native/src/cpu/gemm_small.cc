// Products of a few activation rows with a weight read as W^T (a decode step: R <= kSmallRows):
//   c[r, o] = alpha * Σ_k x[r,k] w[o,k] + beta * c[r, o]   for r < R, o in [lo, hi).
// Each weight row is read from memory once per call for all R rows: register tiles of RB rows
// x OB weight rows, each accumulator a 16-lane partial dot product over k, summed at the end.
//
// Why dot products on W as it is stored, not outer products on packed panels: W is [N, K]
// row-major, so OB of its rows are OB contiguous streams along k — already the layout a dot tile
// wants, and for vdpbf16ps (pairs of bf16 along k) exactly its operand layout. Outer products
// would need W transposed into column panels: either a second copy of every weight (which a
// generating model must not hold) or a transpose per block per call, which at R <= 16 costs as
// much as the FMAs themselves. A 4 x 4 dot tile issues 8 loads per 16 FMAs, no worse than an
// outer-product tile's broadcasts, and costs no memory beyond R rows of x in bf16.
//
// Three kernels, one contract:
//   f32:        fp32 weights, FMA.
//   bf16 widen: bf16 weights widened to fp32 in registers, FMA; x stays fp32.
//   bf16 dot:   vdpbf16ps (AVX512_BF16, checked at run time): x rounded to bf16 first, as a GPU's
//               bf16 GEMM does, so results differ from the widen kernel by x's rounding
//               (relative ~2^-9 per term); twice the multiply-adds per instruction. Opt-in
//               (TEMPER_CPU_BF16_DOT=1): the engine's bf16 precision keeps activations fp32.
// Batch invariance: every accumulator's sequence of operations depends only on its own row of x,
// its weight row and K — never on R, on the tile a row lands in, on the other rows or on the
// column slice — so each row's result is the same bits whatever else is in the batch.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/aligned.h"
#include "cpu/kernels.h"

#if defined(__AVX512F__) || (defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)))
#include <immintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TEMPER_DOT_BF16 1
#define TEMPER_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

namespace temper {

namespace {

// Sixteen lanes through GCC/Clang vector extensions: AVX-512 where -march has it, two AVX2
// halves or scalar code elsewhere.
typedef float v16 __attribute__((vector_size(64)));
typedef uint16_t h16 __attribute__((vector_size(32)));
typedef uint32_t u16x __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

// Halving adds: a fixed order.
inline float hsum16(v16 v) {
  v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  v4f b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

struct F32Row {
  static v16 load(const float* p) {
    v16 v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static float at(const float* p) { return *p; }
};

// bf16 is the top half of an fp32: widening is a zero-extend and a shift, done in registers.
struct Bf16Row {
  static v16 load(const uint16_t* p) {
    h16 h;
    std::memcpy(&h, p, sizeof h);
    u16x u = __builtin_convertvector(h, u16x) << 16;
    v16 v;
    std::memcpy(&v, &u, sizeof v);
    return v;
  }
  static float at(const uint16_t* p) { return bf16_value(*p); }
};

inline void store(float* out, float s, float alpha, float beta) { *out = (beta != 0.0f ? *out : 0.0f) + alpha * s; }

// Weight rows of the next column block, fetched into cache while this block computes: a decode
// step's weights come from memory (the whole model is read once per step), and the hardware
// prefetcher alone leaves the FMAs waiting on each block's first pass. Four rows from `w` (none
// when null); each k step of a tile fetches the cache line its loads will want one block later.
// A fixed count: a loop bound known only at run time costs the tile its accumulator registers.
template <class T>
struct Ahead {
  const T* w = nullptr;
  void fetch(int64_t k, int64_t ldw) const {
    // One 64-byte line per row per fetch: every k step for fp32, every other for bf16.
    if (!w || (sizeof(T) == 2 && (k & 31) != 0)) return;
    for (int o = 0; o < 4; o++) __builtin_prefetch(w + o * ldw + k, 0, 3);
  }
};

#ifdef __AVX512F__
// The same tile in AVX-512 intrinsics where the build targets it: GCC keeps these accumulators in
// registers, while the vector-extension arrays below end up spilled in the k loop.
inline __m512 load_w(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load_w(const uint16_t* p) {
  // Widened through the vector extension (GCC 12 warns falsely about _mm512_cvtepu16_epi32).
  const v16 v = Bf16Row::load(p);
  __m512 m;
  std::memcpy(&m, &v, sizeof m);
  return m;
}

template <int RB, int OB, class Row, class T>
void dot_tile(const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, float alpha, float beta, float* c,
              int64_t ldc, Ahead<T> next) {
  __m512 acc[RB][OB];
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) acc[r][o] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[OB];
    for (int o = 0; o < OB; o++) wv[o] = load_w(w + o * ldw + k);
    next.fetch(k, ldw);
    for (int r = 0; r < RB; r++) {
      const __m512 xv = _mm512_loadu_ps(x + r * ldx + k);
      for (int o = 0; o < OB; o++) acc[r][o] = _mm512_fmadd_ps(xv, wv[o], acc[r][o]);
    }
  }
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) {
      v16 lanes;
      std::memcpy(&lanes, &acc[r][o], sizeof lanes);
      float s = hsum16(lanes);
      for (int64_t j = k; j < K; j++) s += x[r * ldx + j] * Row::at(w + o * ldw + j);
      store(c + r * ldc + o, s, alpha, beta);
    }
}
#else

// RB rows of x against OB weight rows, K deep. The k tail past the last 16 is added per element
// after the lane sum, the same way for every tile.
template <int RB, int OB, class Row, class T>
void dot_tile(const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, float alpha, float beta, float* c,
              int64_t ldc, Ahead<T> next) {
  v16 acc[RB][OB];
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) acc[r][o] = v16{};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    // OB weight vectors in registers, one x vector at a time: RB * OB + OB + 1 registers.
    v16 wv[OB];
    for (int o = 0; o < OB; o++) wv[o] = Row::load(w + o * ldw + k);
    next.fetch(k, ldw);
    for (int r = 0; r < RB; r++) {
      const v16 xv = F32Row::load(x + r * ldx + k);
      for (int o = 0; o < OB; o++) acc[r][o] += xv * wv[o];
    }
  }
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) {
      float s = hsum16(acc[r][o]);
      for (int64_t j = k; j < K; j++) s += x[r * ldx + j] * Row::at(w + o * ldw + j);
      store(c + r * ldc + o, s, alpha, beta);
    }
}
#endif

// Weight rows [lo, hi) against RB rows of x; meanwhile the next block's rows [ahead_lo, ahead_hi)
// are fetched, four per tile (a last partial four is left to the hardware).
template <int RB, class Row, class T>
void dot_rows(int64_t lo, int64_t hi, const float* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, float alpha,
              float beta, float* c, int64_t ldc, int64_t ahead_lo, int64_t ahead_hi) {
  auto ahead = [&](int64_t o) {
    const int64_t a = ahead_lo + (o - lo);
    return Ahead<T>{a + 4 <= ahead_hi ? w + a * ldw : nullptr};
  };
  int64_t o = lo;
  for (; o + 4 <= hi; o += 4) dot_tile<RB, 4, Row>(x, ldx, w + o * ldw, ldw, K, alpha, beta, c + o, ldc, ahead(o));
  for (; o < hi; o++) dot_tile<RB, 1, Row>(x, ldx, w + o * ldw, ldw, K, alpha, beta, c + o, ldc, Ahead<T>{});
}

// Columns in blocks small enough that the block's weight rows stay in L2 while every group of
// rows passes over them: the weight comes from memory once, x from L1/L2. With up to three passes
// (R <= 18) each pass over a block (one group of rows) fetches its share of the next block's
// rows, so the reads from memory are spread over the block's arithmetic; with more, the passes
// leave the hardware prefetcher time enough, and the extra fetches cost (measured on the 0.5B
// shape: 1.2x faster at 1-4 rows, 1.1x at 16 on the default shape, ~0.9x at 24-64 rows).
template <class Row, class T>
void small_product(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx, const T* w,
                   int64_t ldw, float beta, float* c, int64_t ldc) {
  const int64_t block = std::max<int64_t>(4, (int64_t(1) << 17) / (int64_t)(sizeof(T) * std::max<int64_t>(K, 1)) / 4 * 4);
  const int64_t passes = (R + 5) / 6;
  for (int64_t b = lo; b < hi; b += block) {
    const int64_t e = std::min(hi, b + block), next = passes <= 3 ? std::min(hi, e + block) - e : 0;
    // Pass p fetches next-block rows [share(p), share(p + 1)), whole tiles of four.
    auto share = [&](int64_t p) { return p == passes ? e + next : e + next * p / passes / 4 * 4; };
    int64_t r = 0, p = 0;
    for (; r + 6 <= R; r += 6, p++)
      dot_rows<6, Row>(b, e, x + r * ldx, ldx, w, ldw, K, alpha, beta, c + r * ldc, ldc, share(p), share(p + 1));
    const float* xr = x + r * ldx;
    float* cr = c + r * ldc;
    const int64_t a = share(p), z = share(p + 1);
    switch (R - r) {
      case 5: dot_rows<5, Row>(b, e, xr, ldx, w, ldw, K, alpha, beta, cr, ldc, a, z); break;
      case 4: dot_rows<4, Row>(b, e, xr, ldx, w, ldw, K, alpha, beta, cr, ldc, a, z); break;
      case 3: dot_rows<3, Row>(b, e, xr, ldx, w, ldw, K, alpha, beta, cr, ldc, a, z); break;
      case 2: dot_rows<2, Row>(b, e, xr, ldx, w, ldw, K, alpha, beta, cr, ldc, a, z); break;
      case 1: dot_rows<1, Row>(b, e, xr, ldx, w, ldw, K, alpha, beta, cr, ldc, a, z); break;
      default: break;
    }
  }
}

#ifdef TEMPER_DOT_BF16
// x rows rounded to bf16 (bf16_bits, the engine's one rounding), each padded with zeros to a
// multiple of 32 so the kernel has no scalar tail.
void round_rows(std::vector<uint16_t>& out, int64_t R, int64_t K, int64_t K32, const float* x, int64_t ldx) {
  if (out.size() < (size_t)(R * K32)) out.resize((size_t)(R * K32));
  for (int64_t r = 0; r < R; r++) {
    uint16_t* o = out.data() + r * K32;
    const float* xr = x + r * ldx;
    // Branch-free so it vectorises: the NaN case is selected, not branched to.
    for (int64_t k = 0; k < K; k++) {
      uint32_t u;
      std::memcpy(&u, xr + k, 4);
      const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1)) >> 16;
      const uint32_t nan = (u >> 16) | 0x40;
      o[k] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    }
    std::fill(o + K, o + K32, uint16_t(0));
  }
}

template <int RB, int OB>
TEMPER_BF16_TARGET inline __attribute__((always_inline)) void dpbf16_tile(const uint16_t* x, int64_t ldx,
                                                                           const uint16_t* w, int64_t ldw, int64_t K,
                                                                           float alpha, float beta, float* c,
                                                                           int64_t ldc) {
  __m512 acc[RB][OB];
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) acc[r][o] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512bh wv[OB], xv[RB];
    for (int o = 0; o < OB; o++) wv[o] = (__m512bh)_mm512_loadu_si512(w + o * ldw + k);
    for (int r = 0; r < RB; r++) xv[r] = (__m512bh)_mm512_loadu_si512(x + r * ldx + k);
    for (int r = 0; r < RB; r++)
      for (int o = 0; o < OB; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv[r], wv[o]);
  }
  if (k < K) {
    // The weight's tail read under a mask (no load past its row); x's padding is already zero.
    const __mmask32 m = (__mmask32)((uint64_t(1) << (K - k)) - 1);
    __m512bh wv[OB], xv[RB];
    for (int o = 0; o < OB; o++) wv[o] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + o * ldw + k);
    for (int r = 0; r < RB; r++) xv[r] = (__m512bh)_mm512_loadu_si512(x + r * ldx + k);
    for (int r = 0; r < RB; r++)
      for (int o = 0; o < OB; o++) acc[r][o] = _mm512_dpbf16_ps(acc[r][o], xv[r], wv[o]);
  }
  for (int r = 0; r < RB; r++)
    for (int o = 0; o < OB; o++) {
      // The same lane sum as hsum16, written out so its order does not depend on the compiler.
      alignas(64) float l[16];
      _mm512_store_ps(l, acc[r][o]);
      const float s = (((l[0] + l[8]) + (l[4] + l[12])) + ((l[2] + l[10]) + (l[6] + l[14]))) +
                      (((l[1] + l[9]) + (l[5] + l[13])) + ((l[3] + l[11]) + (l[7] + l[15])));
      store(c + r * ldc + o, s, alpha, beta);
    }
}

template <int RB>
TEMPER_BF16_TARGET void dpbf16_rows(int64_t lo, int64_t hi, const uint16_t* x, int64_t ldx, const uint16_t* w,
                                    int64_t ldw, int64_t K, float alpha, float beta, float* c, int64_t ldc) {
  int64_t o = lo;
  for (; o + 4 <= hi; o += 4) dpbf16_tile<RB, 4>(x, ldx, w + o * ldw, ldw, K, alpha, beta, c + o, ldc);
  for (; o < hi; o++) dpbf16_tile<RB, 1>(x, ldx, w + o * ldw, ldw, K, alpha, beta, c + o, ldc);
}
#endif

// x's rows as the tiles want them: each starting on a 64-byte line (copied when they do not; a
// copy of R rows costs little beside reading the weight once).
const float* aligned_rows(int64_t R, int64_t K, const float* x, int64_t& ldx) {
  if (reinterpret_cast<uintptr_t>(x) % 64 == 0 && ldx % 16 == 0) return x;
  thread_local AlignedFloats copy;
  const int64_t ld = (K + 15) / 16 * 16;
  float* out = copy.get((size_t)(R * ld));
  for (int64_t r = 0; r < R; r++) std::memcpy(out + r * ld, x + r * ldx, (size_t)K * sizeof(float));
  ldx = ld;
  return out;
}

}  // namespace

void gemm_small_f32(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                    const float* w, int64_t ldw, float beta, float* c, int64_t ldc) {
  x = aligned_rows(R, K, x, ldx);
  small_product<F32Row>(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc);
}

void gemm_small_bf16_widen(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                           const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc) {
  x = aligned_rows(R, K, x, ldx);
  small_product<Bf16Row>(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc);
}

bool gemm_small_has_dot_bf16() {
#ifdef TEMPER_DOT_BF16
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

void gemm_small_bf16_dot(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                         const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc) {
#ifdef TEMPER_DOT_BF16
  if (!gemm_small_has_dot_bf16()) throw std::runtime_error("gemm_small_bf16_dot: this CPU has no AVX512_BF16");
  const int64_t K32 = (K + 31) / 32 * 32;
  thread_local std::vector<uint16_t> xb;
  round_rows(xb, R, K, K32, x, ldx);
  const int64_t block = std::max<int64_t>(4, (int64_t(1) << 17) / (2 * std::max<int64_t>(K, 1)) / 4 * 4);
  for (int64_t b = lo; b < hi; b += block) {
    const int64_t e = std::min(hi, b + block);
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) dpbf16_rows<4>(b, e, xb.data() + r * K32, K32, w, ldw, K, alpha, beta, c + r * ldc, ldc);
    const uint16_t* xr = xb.data() + r * K32;
    float* cr = c + r * ldc;
    switch (R - r) {
      case 3: dpbf16_rows<3>(b, e, xr, K32, w, ldw, K, alpha, beta, cr, ldc); break;
      case 2: dpbf16_rows<2>(b, e, xr, K32, w, ldw, K, alpha, beta, cr, ldc); break;
      case 1: dpbf16_rows<1>(b, e, xr, K32, w, ldw, K, alpha, beta, cr, ldc); break;
      default: break;
    }
  }
#else
  (void)R, (void)lo, (void)hi, (void)K, (void)alpha, (void)x, (void)ldx, (void)w, (void)ldw, (void)beta, (void)c,
      (void)ldc;
  throw std::runtime_error("gemm_small_bf16_dot: built without AVX512_BF16 support");
#endif
}

bool gemm_small_uses_dot_bf16() {
  // Opt-in: the engine's bf16 precision means bf16 weights with fp32 activations (the bf16
  // fixtures hold it to 1e-4, which x rounded to bf16 misses by ~10x).
  static const bool on = [] {
    const char* v = std::getenv("TEMPER_CPU_BF16_DOT");
    return v && std::string(v) == "1" && gemm_small_has_dot_bf16();
  }();
  return on;
}

void gemm_small_bf16(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                     const uint16_t* w, int64_t ldw, float beta, float* c, int64_t ldc) {
  if (gemm_small_uses_dot_bf16()) gemm_small_bf16_dot(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc);
  else gemm_small_bf16_widen(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc);
}

}  // namespace temper

namespace temper {

void gemm_small_cols(int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
                     const float* w, const uint16_t* w16, int64_t ldw, float beta, float* c, int64_t ldc) {
  if (w16) gemm_small_bf16(R, lo, hi, K, alpha, x, ldx, w16, ldw, beta, c, ldc);
  else gemm_small_f32(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc);
}

bool matmul_small(ThreadPool& pool, int64_t M, int64_t N, int64_t K, float alpha, Mat a, Mat b, float beta, float* c,
                  int64_t ldc) {
  if (M > kSmallRows || a.trans || !b.trans || a.dtype != DType::F32) return false;
  const float* w = b.dtype == DType::F32 ? static_cast<const float*>(b.p) : nullptr;
  const uint16_t* w16 = b.dtype == DType::BF16 ? static_cast<const uint16_t*>(b.p) : nullptr;
  if (!w && !w16) return false;
  const float* x = static_cast<const float*>(a.p);
  const int64_t parts = std::min<int64_t>(pool.size(), (N + 15) / 16);
  pool.run(parts, [&](int64_t p) {
    auto [lo, hi] = column_slice(N, p, parts);
    gemm_small_cols(M, lo, hi, K, alpha, x, a.ld, w, w16, b.ld, beta, c, ldc);
  });
  return true;
}

}  // namespace temper
