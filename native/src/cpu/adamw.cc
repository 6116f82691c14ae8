#include <cmath>
#include <mutex>

#include "cpu/kernels.h"

namespace temper {

// torch.optim.AdamW (non-amsgrad): decay first, then the bias-corrected Adam step.
void adamw_update(ThreadPool& pool, float* p, uint16_t* p16, const float* g, float* m, float* v, int64_t n,
                  float gscale, double lr, double b1, double b2, double eps, double wd, int64_t t) {
  const double bc1 = 1.0 - std::pow(b1, (double)t), bc2_sqrt = std::sqrt(1.0 - std::pow(b2, (double)t));
  const float step = (float)(lr / bc1), decay = (float)(1.0 - lr * wd);
  const float fb1 = (float)b1, fb2 = (float)b2, feps = (float)eps, inv_bc2 = (float)(1.0 / bc2_sqrt);
  pool.chunks(n, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; i++) {
      float gi = g[i] * gscale;
      m[i] = fb1 * m[i] + (1.0f - fb1) * gi;
      v[i] = fb2 * v[i] + (1.0f - fb2) * gi * gi;
      p[i] *= decay;
      p[i] -= step * m[i] / (std::sqrt(v[i]) * inv_bc2 + feps);
    }
    if (p16)
      for (int64_t i = lo; i < hi; i++) p16[i] = bf16_bits(p[i]);
  });
}

double sum_squares(ThreadPool& pool, const float* g, int64_t n) {
  double total = 0;
  std::mutex mu;
  pool.chunks(n, [&](int64_t lo, int64_t hi, int) {
    double s = 0;
    for (int64_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
    std::lock_guard<std::mutex> l(mu);
    total += s;
  });
  return total;
}

}  // namespace temper
