#include <cmath>

#include "cpu/kernels.h"

namespace temper {

// x[N, heads, D]: (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1, x2 the two halves of a head.
void rope_rows(float* x, const int32_t* pos, int64_t lo, int64_t hi, int64_t heads, int64_t D, const float* cos,
               const float* sin, bool inverse) {
  int64_t half = D / 2;
  for (int64_t n = lo; n < hi; n++) {
    const float* c = cos + (int64_t)pos[n] * half;
    const float* s = sin + (int64_t)pos[n] * half;
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

void rope_apply(ThreadPool& pool, float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
                const float* sin, bool inverse) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) { rope_rows(x, pos, lo, hi, heads, D, cos, sin, inverse); });
}

}  // namespace temper
