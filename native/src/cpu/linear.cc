// A projection with optional bias and optional PEFT adapter.
//   LoRA:  y = W x + b + s B (A x)
//   DoRA:  y = (mag / ‖W + s B A‖_row) * (W x + s B (A x)) + b, the norm a constant in backward (as PEFT)
#include <algorithm>
#include <cmath>

#include "cpu/model.h"

namespace temper {

std::vector<float> Linear::merged_weight(ThreadPool& pool) const {
  std::vector<float> w2 = w.data;
  if (!lora) return w2;
  const Adapter& a = *lora;
  gemm(pool, false, false, out, in, a.r, a.scale, a.B.data.data(), a.r, a.A.data.data(), in, 1.0f,
       w2.data(), in);
  if (a.dora) {
    for (int64_t o = 0; o < out; o++) {
      double ss = 0;
      for (int64_t i = 0; i < in; i++) ss += (double)w2[o * in + i] * w2[o * in + i];
      float f = a.mag.data[o] / (float)std::sqrt(ss);
      for (int64_t i = 0; i < in; i++) w2[o * in + i] *= f;
    }
  }
  return w2;
}

// y[N,out] = x[N,in] W^T + b + adapter term
void Linear::forward(ThreadPool& pool, float* y, const float* x, int64_t N, LinearSave* save) const {
  if (!lora) {
    matmul_forward(pool, y, x, w.data.data(), b.data.empty() ? nullptr : b.data.data(), N, in, out);
    return;
  }
  const Adapter& a = *lora;
  LinearSave local;
  LinearSave& s = save ? *save : local;
  s.ax.resize(N * a.r);
  matmul_forward(pool, s.ax.data(), x, a.A.data.data(), nullptr, N, in, a.r);
  bool bias_now = !a.dora && !b.data.empty();
  matmul_forward(pool, y, x, w.data.data(), bias_now ? b.data.data() : nullptr, N, in, out);
  gemm(pool, false, true, N, out, a.r, a.scale, s.ax.data(), a.r, a.B.data.data(), a.r, 1.0f, y, out);
  if (!a.dora) return;
  // The row norms of W + s B A, recomputed every call because A and B train.
  Buf dw((size_t)(out * in));
  gemm(pool, false, false, out, in, a.r, a.scale, a.B.data.data(), a.r, a.A.data.data(), in, 0.0f, dw.data(), in);
  s.norm.resize(out);
  s.colscale.resize(out);
  pool.chunks(out, [&](int64_t lo, int64_t hi, int) {
    for (int64_t o = lo; o < hi; o++) {
      double ss = 0;
      for (int64_t i = 0; i < in; i++) {
        double v = (double)w.data[o * in + i] + dw[o * in + i];
        ss += v * v;
      }
      s.norm[o] = (float)std::sqrt(ss);
      s.colscale[o] = a.mag.data[o] / s.norm[o];
    }
  });
  if (save) {
    s.z.resize(N * out);
    std::copy(y, y + N * out, s.z.data());
  }
  const float* bias = b.data.empty() ? nullptr : b.data.data();
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = lo; n < hi; n++)
      for (int64_t o = 0; o < out; o++) y[n * out + o] = y[n * out + o] * s.colscale[o] + (bias ? bias[o] : 0.0f);
  });
}

void Linear::backward(ThreadPool& pool, float* dx, bool accumulate, const float* dy, const float* x, int64_t N,
                      const LinearSave& save) {
  if (!lora) {
    matmul_backward(pool, dx, accumulate, w.g(), b.g(), dy, x, w.data.data(), N, in, out);
    return;
  }
  Adapter& a = *lora;
  // dz: the gradient at W x + s B A x; DoRA scales it per output and feeds the magnitude.
  Buf dz_buf;
  const float* dz = dy;
  if (a.dora) {
    dz_buf.resize(N * out);
    float* dmag = a.mag.g();
    pool.chunks(out, [&](int64_t lo, int64_t hi, int) {
      for (int64_t o = lo; o < hi; o++) {
        double acc = 0;
        for (int64_t n = 0; n < N; n++) {
          acc += (double)dy[n * out + o] * save.z[n * out + o];
          dz_buf[n * out + o] = dy[n * out + o] * save.colscale[o];
        }
        if (dmag) dmag[o] += (float)(acc / save.norm[o]);
      }
    });
    dz = dz_buf.data();
  }
  if (b.g()) matmul_backward(pool, nullptr, false, nullptr, b.g(), dy, x, nullptr, N, in, out);
  matmul_backward(pool, dx, accumulate, w.g(), nullptr, dz, x, w.data.data(), N, in, out);
  if (a.B.g()) gemm(pool, true, false, out, a.r, N, a.scale, dz, out, save.ax.data(), a.r, 1.0f, a.B.g(), a.r);
  Buf dax((size_t)(N * a.r));
  gemm(pool, false, false, N, a.r, out, a.scale, dz, out, a.B.data.data(), a.r, 0.0f, dax.data(), a.r);
  if (a.A.g()) gemm(pool, true, false, a.r, in, N, 1.0f, dax.data(), a.r, x, in, 1.0f, a.A.g(), in);
  if (dx) gemm(pool, false, false, N, in, a.r, 1.0f, dax.data(), a.r, a.A.data.data(), in, 1.0f, dx, in);
}

}  // namespace temper
