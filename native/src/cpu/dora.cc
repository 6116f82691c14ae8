// DoRA's per-row magnitude: y = (mag / ‖W + s B A‖_row) * (W x + s B A x) + b, the norm a constant
// in backward (as PEFT). Norms are summed in double.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.h"

namespace temper {

// norm[o] = ‖w[o,:] + dw[o,:]‖, colscale[o] = mag[o] / norm[o]
void dora_norms(ThreadPool& pool, float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                int64_t out, int64_t in) {
  pool.chunks(out, [&](int64_t lo, int64_t hi, int) {
    for (int64_t o = lo; o < hi; o++) {
      double ss = 0;
      for (int64_t i = 0; i < in; i++) {
        double v = (double)w[o * in + i] + (dw ? dw[o * in + i] : 0.0f);
        ss += v * v;
      }
      if (norm) norm[o] = (float)std::sqrt(ss);
      if (colscale) colscale[o] = mag[o] / (float)std::sqrt(ss);
    }
  });
}

// y[n,o] = y[n,o] * colscale[o] + bias[o], keeping the unscaled y in z
void dora_scale(ThreadPool& pool, float* y, float* z, const float* colscale, const float* bias, int64_t N,
                int64_t out) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    if (z) std::copy(y + lo * out, y + hi * out, z + lo * out);
    for (int64_t n = lo; n < hi; n++)
      for (int64_t o = 0; o < out; o++) y[n * out + o] = y[n * out + o] * colscale[o] + (bias ? bias[o] : 0.0f);
  });
}

// dz = dy * colscale;  dmag[o] += Σ_n dy * z / norm[o]
void dora_backward(ThreadPool& pool, float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                   const float* norm, int64_t N, int64_t out) {
  pool.chunks(out, [&](int64_t lo, int64_t hi, int) {
    for (int64_t o = lo; o < hi; o++) {
      double acc = 0;
      for (int64_t n = 0; n < N; n++) {
        acc += (double)dy[n * out + o] * z[n * out + o];
        dz[n * out + o] = dy[n * out + o] * colscale[o];
      }
      if (dmag) dmag[o] += (float)(acc / norm[o]);
    }
  });
}

void scale_rows(ThreadPool& pool, float* x, const float* s, int64_t R, int64_t C) {
  pool.chunks(R, [&](int64_t lo, int64_t hi, int) {
    for (int64_t r = lo; r < hi; r++)
      for (int64_t c = 0; c < C; c++) x[r * C + c] *= s[r];
  });
}

}  // namespace temper
