#include <cmath>

#include "cpu/kernels.h"

namespace temper {

// Angles are formed in double: at position 4096 a float angle would already be off in the
// fourth digit, and the reference computes them in float64.
namespace {

// HF's _compute_llama3_parameters, per frequency.
double scaled(double inv, const RopeScaling& s) {
  if (s.kind == RopeScaling::Linear) return inv / s.factor;
  if (s.kind != RopeScaling::Llama3) return inv;
  const double wavelen = 2 * M_PI / inv, low_wavelen = s.original_max_positions / s.low_freq_factor,
               high_wavelen = s.original_max_positions / s.high_freq_factor;
  if (wavelen < high_wavelen) return inv;
  if (wavelen > low_wavelen) return inv / s.factor;
  double smooth = (s.original_max_positions / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1 - smooth) * inv / s.factor + smooth * inv;
}

}  // namespace

// A model's scaling never changes, so theta and D identify its table.
void RopeTable::ensure(double th, int64_t d, int64_t npos, const RopeScaling& scaling) {
  if (th == theta && d == D && npos <= positions) return;
  theta = th;
  D = d;
  positions = std::max<int64_t>(npos, 256);
  int64_t half = D / 2;
  cos.resize(positions * half);
  sin.resize(positions * half);
  for (int64_t i = 0; i < half; i++) {
    double inv = scaled(std::pow(theta, -2.0 * (double)i / (double)D), scaling);
    for (int64_t p = 0; p < positions; p++) {
      cos[p * half + i] = (float)std::cos(p * inv);
      sin[p * half + i] = (float)std::sin(p * inv);
    }
  }
}

// x[N, heads, D]: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1, x2 the two halves of a head.
void rope_rows(float* x, const int32_t* pos, int64_t lo, int64_t hi, int64_t heads, int64_t D, const RopeTable& rope,
               bool inverse) {
  int64_t half = D / 2;
  for (int64_t n = lo; n < hi; n++) {
    const float* c = rope.cos.data() + (int64_t)pos[n] * half;
    const float* s = rope.sin.data() + (int64_t)pos[n] * half;
    for (int64_t h = 0; h < heads; h++) {
      float* xh = x + (n * heads + h) * D;
      for (int64_t i = 0; i < half; i++) {
        float x1 = xh[i], x2 = xh[i + half], sn = inverse ? -s[i] : s[i];
        xh[i] = x1 * c[i] - x2 * sn;
        xh[i + half] = x2 * c[i] + x1 * sn;
      }
    }
  }
}

void rope_apply(ThreadPool& pool, float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D,
                const RopeTable& rope, bool inverse) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) { rope_rows(x, pos, lo, hi, heads, D, rope, inverse); });
}

}  // namespace temper
