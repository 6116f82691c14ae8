// The decode-step product kernels (src/cpu/gemm_small.cc), built with the engine's flags and
// run by gemm_small.test.ts: each kernel against a double-precision reference at every row count
// 1..64 with odd N and K and padded strides; each row's bits the same whatever R, the other rows
// and the column split; alpha and accumulation; the pooled dispatch equal to one thread's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/dtype.h"
#include "cpu/kernels.h"

using namespace temper;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok && failures++ < 20) std::printf("FAIL %s\n", what.c_str());
}

enum class Kind { F32, Bf16Widen, Bf16Dot };
const char* name(Kind k) { return k == Kind::F32 ? "f32" : k == Kind::Bf16Widen ? "bf16_widen" : "bf16_dot"; }

void run(Kind kind, int64_t R, int64_t lo, int64_t hi, int64_t K, float alpha, const float* x, int64_t ldx,
         const float* w, const uint16_t* w16, int64_t ldw, float beta, float* c, int64_t ldc) {
  switch (kind) {
    case Kind::F32: gemm_small_f32(R, lo, hi, K, alpha, x, ldx, w, ldw, beta, c, ldc); break;
    case Kind::Bf16Widen: gemm_small_bf16_widen(R, lo, hi, K, alpha, x, ldx, w16, ldw, beta, c, ldc); break;
    case Kind::Bf16Dot: gemm_small_bf16_dot(R, lo, hi, K, alpha, x, ldx, w16, ldw, beta, c, ldc); break;
  }
}

struct Problem {
  int64_t N, K, ldx, ldw, ldc;
  std::vector<float> x, w, c0;  // 64 rows of x; c0 the values C holds before an accumulating call
  std::vector<uint16_t> w16;
};

Problem make(int64_t N, int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{N, K, K + 3, K + 5, N + 7, {}, {}, {}, {}};
  p.x.resize((size_t)(64 * p.ldx));
  p.w.resize((size_t)(N * p.ldw));
  p.w16.resize(p.w.size());
  p.c0.resize((size_t)(64 * p.ldc));
  for (float& v : p.x) v = normal(rng);
  for (size_t i = 0; i < p.w.size(); i++) p.w16[i] = bf16_bits(p.w[i] = normal(rng) * 0.1f);
  for (float& v : p.c0) v = normal(rng);
  return p;
}

// Each kernel against Σ x w in double over the operands it reads (bf16 x for the dot kernel),
// within a few fp32 roundings of Σ|x w|; the dot kernel also against fp32 x within bf16's
// rounding of x (2^-8 relative), the numerics change it brings.
void accuracy(Kind kind, const Problem& p, int64_t R, float alpha, bool accumulate) {
  std::vector<float> c(p.c0);
  run(kind, R, 0, p.N, p.K, alpha, p.x.data(), p.ldx, p.w.data(), p.w16.data(), p.ldw, accumulate ? 1.0f : 0.0f,
      c.data(), p.ldc);
  const bool bf16 = kind != Kind::F32, xr = kind == Kind::Bf16Dot;
  for (int64_t r = 0; r < R; r++)
    for (int64_t o = 0; o < p.N; o++) {
      double ref = 0, ref_x32 = 0, mag = 0;
      for (int64_t k = 0; k < p.K; k++) {
        const double xv = p.x[r * p.ldx + k];
        const double wv = bf16 ? bf16_value(p.w16[o * p.ldw + k]) : p.w[o * p.ldw + k];
        ref += (xr ? bf16_value(bf16_bits((float)xv)) : xv) * wv;
        ref_x32 += xv * wv;
        mag += std::fabs(xv * wv);
      }
      const double base = accumulate ? p.c0[r * p.ldc + o] : 0.0;
      const double got = c[r * p.ldc + o];
      const double tol = 4 * std::sqrt((double)p.K) * 6e-8 * std::fabs(alpha) * mag + 1e-6 * std::fabs(base);
      char what[160];
      std::snprintf(what, sizeof what, "%s accuracy R=%lld N=%lld K=%lld r=%lld o=%lld: %g vs %g", name(kind),
                    (long long)R, (long long)p.N, (long long)p.K, (long long)r, (long long)o, got, base + alpha * ref);
      check(std::fabs(got - (base + alpha * ref)) <= tol, what);
      if (xr) check(std::fabs(got - (base + alpha * ref_x32)) <= 4e-3 * std::fabs(alpha) * mag + tol, what);
      if (std::fabs(got - (base + alpha * ref)) > tol) return;
    }
  // Columns past N and rows' padding untouched.
  for (int64_t r = 0; r < R; r++)
    for (int64_t o = p.N; o < p.ldc; o++) check(c[r * p.ldc + o] == p.c0[r * p.ldc + o], "padding of C written");
}

// Row r of a batch of R (any R > r, the other rows random) is the same bits as row r alone, and
// the same whether the columns come in one slice or several.
void invariance(Kind kind, const Problem& p) {
  std::vector<float> alone((size_t)(64 * p.ldc));
  for (int64_t r = 0; r < 64; r++)
    run(kind, 1, 0, p.N, p.K, 1.0f, p.x.data() + r * p.ldx, p.ldx, p.w.data(), p.w16.data(), p.ldw, 0.0f,
        alone.data() + r * p.ldc, p.ldc);
  for (int64_t R = 1; R <= 64; R++) {
    std::vector<float> c((size_t)(64 * p.ldc));
    // Uneven column slices, as threads would take them, for odd R; one slice for even R.
    const int64_t cut = R % 2 ? std::min<int64_t>(p.N, 16 * (R % 5 + 1) - 3) : p.N;
    run(kind, R, 0, cut, p.K, 1.0f, p.x.data(), p.ldx, p.w.data(), p.w16.data(), p.ldw, 0.0f, c.data(), p.ldc);
    run(kind, R, cut, p.N, p.K, 1.0f, p.x.data(), p.ldx, p.w.data(), p.w16.data(), p.ldw, 0.0f, c.data(), p.ldc);
    bool same = true;
    for (int64_t r = 0; r < R; r++)
      for (int64_t o = 0; o < p.N; o++) same = same && c[r * p.ldc + o] == alone[r * p.ldc + o];
    check(same, std::string(name(kind)) + " rows differ from rows computed alone at R=" + std::to_string(R) +
                    " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K));
  }
}

// x rows on 64-byte lines (read in place) and x rows off them (copied onto them first): the same bits.
void alignment(Kind kind, const Problem& p) {
  const int64_t ld = (p.K + 15) / 16 * 16, R = 19;
  float* xa = static_cast<float*>(std::aligned_alloc(64, (size_t)(R * ld) * sizeof(float)));
  for (int64_t r = 0; r < R; r++) std::copy_n(p.x.data() + r * p.ldx, p.K, xa + r * ld);
  std::vector<float> in_place((size_t)(R * p.ldc)), copied(in_place.size());
  run(kind, R, 0, p.N, p.K, 1.0f, xa, ld, p.w.data(), p.w16.data(), p.ldw, 0.0f, in_place.data(), p.ldc);
  run(kind, R, 0, p.N, p.K, 1.0f, p.x.data(), p.ldx, p.w.data(), p.w16.data(), p.ldw, 0.0f, copied.data(), p.ldc);
  check(in_place == copied, std::string(name(kind)) + ": aligned and unaligned rows of x differ");
  std::free(xa);
}

// matmul_small over a pool of 3 threads: the same bits as one thread over all columns.
void pooled(const Problem& p, bool bf16) {
  ThreadPool pool(3);
  for (int64_t R : {1, 7, 64}) {
    std::vector<float> one((size_t)(R * p.ldc)), many(one.size());
    gemm_small_cols(R, 0, p.N, p.K, 0.5f, p.x.data(), p.ldx, bf16 ? nullptr : p.w.data(), bf16 ? p.w16.data() : nullptr,
                    p.ldw, 0.0f, one.data(), p.ldc);
    Mat a{p.x.data(), DType::F32, p.ldx, false};
    Mat b{bf16 ? (const void*)p.w16.data() : (const void*)p.w.data(), bf16 ? DType::BF16 : DType::F32, p.ldw, true};
    check(matmul_small(pool, R, p.N, p.K, 0.5f, a, b, 0.0f, many.data(), p.ldc), "matmul_small declined its product");
    check(one == many, std::string("pooled ") + (bf16 ? "bf16" : "f32") + " differs at R=" + std::to_string(R));
  }
  Mat a{p.x.data(), DType::F32, p.ldx, false};
  Mat b{p.w.data(), DType::F32, p.ldw, true};
  std::vector<float> c((size_t)(65 * p.ldc));
  check(!matmul_small(pool, 65, p.N, p.K, 1.0f, a, b, 0.0f, c.data(), p.ldc), "matmul_small took 65 rows");
  Mat bt{p.w.data(), DType::F32, p.ldw, false};
  check(!matmul_small(pool, 4, p.N, p.K, 1.0f, a, bt, 0.0f, c.data(), p.ldc), "matmul_small took an untransposed B");
}

}  // namespace

int main() {
  std::mt19937 rng(11);
  std::vector<Kind> kinds = {Kind::F32, Kind::Bf16Widen};
  if (gemm_small_has_dot_bf16()) kinds.push_back(Kind::Bf16Dot);
  else std::printf("no AVX512_BF16 on this CPU: the vdpbf16ps kernel is not tested\n");
  // Odd sizes exercise every tail: columns past the 4-wide tiles, k past 16 (fp32) and 32 (dot);
  // 130 x 1000 has several column blocks (the next one fetched ahead while one computes).
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{37, 67}, {5, 301}, {53, 16}, {130, 45}, {3, 1}, {130, 1000}};
  for (auto [N, K] : shapes) {
    Problem p = make(N, K, rng);
    for (Kind kind : kinds) {
      for (int64_t R = 1; R <= 64; R++) accuracy(kind, p, R, 1.0f, false);
      accuracy(kind, p, 13, -0.75f, true);
      invariance(kind, p);
      alignment(kind, p);
    }
    pooled(p, false);
    pooled(p, true);
  }
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("all passed (%zu kernels)\n", kinds.size());
  return 0;
}
