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

// dg = dh * u * sigmoid(g) * (1 + g * (1 - sigmoid(g))),  du = dh * silu(g)
void swiglu_backward(ThreadPool& pool, float* dg, float* du, const float* dh, const float* g, const float* u,
                     int64_t n) {
  pool.chunks(n, [&](int64_t lo, int64_t hi, int) {
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
      // Both inputs are read before either output is written: dg and du may be g and u.
      v8 gv = load8(g + i), uv = load8(u + i), s = splat8(1.0f) / (splat8(1.0f) + exp8(-gv)), d = load8(dh + i);
      store8(du + i, d * gv * s);
      store8(dg + i, d * uv * s * (splat8(1.0f) + gv * (splat8(1.0f) - s)));
    }
    for (; i < hi; i++) {
      float gi = g[i], ui = u[i], s = 1.0f / (1.0f + std::exp(-gi));
      du[i] = dh[i] * gi * s;
      dg[i] = dh[i] * ui * s * (1.0f + gi * (1.0f - s));
    }
  });
}

}  // namespace temper
