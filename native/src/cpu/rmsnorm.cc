#include <cmath>

#include "cpu/kernels.h"

namespace temper {

// out[N,C] = x * rstd[n] * w[C],  rstd[n] = 1 / sqrt(mean_c x^2 + eps)
void rmsnorm_rows(float* out, float* rstd, const float* x, const float* w, int64_t lo, int64_t hi, int64_t C,
                  float eps) {
  for (int64_t n = lo; n < hi; n++) {
    const float* xn = x + n * C;
    double ss = 0;
    for (int64_t c = 0; c < C; c++) ss += (double)xn[c] * xn[c];
    float r = (float)(1.0 / std::sqrt(ss / C + eps));
    if (rstd) rstd[n] = r;
    float* on = out + n * C;
    for (int64_t c = 0; c < C; c++) on[c] = xn[c] * r * w[c];
  }
}

void rmsnorm_forward(ThreadPool& pool, float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                     float eps) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) { rmsnorm_rows(out, rstd, x, w, lo, hi, C, eps); });
}

// dx[N,C] += rstd * (dout*w - x * rstd^2 * mean_c(dout*w*x));  dw[C] += Σ_n dout * x * rstd
// dw is summed over the rows in row order, one column range per thread: the same bits whatever
// the thread count, the timing or how many rows the batch has before or after a given row.
void rmsnorm_backward(ThreadPool& pool, float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t C) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = lo; n < hi; n++) {
      const float *xn = x + n * C, *dn = dout + n * C;
      float r = rstd[n];
      double dot = 0;
      for (int64_t c = 0; c < C; c++) dot += (double)dn[c] * w[c] * xn[c];
      float k = (float)(dot / C) * r * r;
      float* dxn = dx + n * C;
      for (int64_t c = 0; c < C; c++) dxn[c] += r * (dn[c] * w[c] - xn[c] * k);
    }
  });
  if (!dw) return;
  pool.chunks(C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = 0; n < N; n++) {
      const float *xn = x + n * C, *dn = dout + n * C;
      const float r = rstd[n];
      for (int64_t c = lo; c < hi; c++) dw[c] += dn[c] * xn[c] * r;
    }
  });
}

}  // namespace temper
