#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace temper {

// h = silu(g) * u,  silu(g) = g * sigmoid(g)
void swiglu_serial(float* h, const float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v8 gv = load8(g + i);
    store8(h + i, gv / (splat8(1.0f) + exp8(-gv)) * load8(u + i));
  }
  for (; i < n; i++) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void swiglu_forward(ThreadPool& pool, float* h, const float* g, const float* u, int64_t n) {
  pool.chunks(n, [&](int64_t lo, int64_t hi, int) { swiglu_serial(h + lo, g + lo, u + lo, hi - lo); });
}

// The backward of 8 elements. Both inputs are read before either output is written: dg and du
// may be g and u (training overwrites them in place).
static inline void swiglu_backward8(float* dg, float* du, const float* dh, const float* g, const float* u) {
  v8 gv = load8(g), uv = load8(u), s = splat8(1.0f) / (splat8(1.0f) + exp8(-gv)), d = load8(dh);
  store8(du, d * gv * s);
  store8(dg, d * uv * s * (splat8(1.0f) + gv * (splat8(1.0f) - s)));
}

// dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  du = dh * silu(g)
void swiglu_backward(ThreadPool& pool, float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  pool.chunks(n, [&](int64_t lo, int64_t hi, int) {
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) swiglu_backward8(dg + i, du + i, dh + i, g + i, u + i);
    for (; i < hi; i++) {
      float gi = g[i], ui = u[i], s = 1.0f / (1.0f + std::exp(-gi));
      du[i] = dh[i] * gi * s;
      dg[i] = dh[i] * ui * s * (1.0f + gi * (1.0f - s));
    }
  });
}

// Batch-invariant mode: every element goes the vector way, in groups of 8 counted from 0 and a
// last group under 8 zero-padded, so an element's result does not depend on where the chunks
// or the buffer end (the scalar tail's std::exp rounds differently from exp8).
void swiglu_forward_grouped(ThreadPool& pool, float* h, const float* g, const float* u, int64_t n) {
  const int64_t whole = n / 8 * 8;
  pool.chunks(whole / 8, [&](int64_t lo, int64_t hi, int) { swiglu_serial(h + lo * 8, g + lo * 8, u + lo * 8, (hi - lo) * 8); });
  if (whole == n) return;
  float gp[8] = {0}, up[8] = {0}, hp[8];
  std::copy(g + whole, g + n, gp), std::copy(u + whole, u + n, up);
  swiglu_serial(hp, gp, up, 8);
  std::copy(hp, hp + (n - whole), h + whole);
}

void swiglu_backward_grouped(ThreadPool& pool, float* dg, float* du, const float* dh, const float* g, const float* u,
                             int64_t n) {
  const int64_t whole = n / 8 * 8;
  pool.chunks(whole / 8, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo * 8; i < hi * 8; i += 8) swiglu_backward8(dg + i, du + i, dh + i, g + i, u + i);
  });
  if (whole == n) return;
  float dhp[8] = {0}, gp[8] = {0}, up[8] = {0}, dgp[8], dup[8];
  std::copy(dh + whole, dh + n, dhp), std::copy(g + whole, g + n, gp), std::copy(u + whole, u + n, up);
  swiglu_backward8(dgp, dup, dhp, gp, up);
  std::copy(dgp, dgp + (n - whole), dg + whole), std::copy(dup, dup + (n - whole), du + whole);
}

}  // namespace temper
