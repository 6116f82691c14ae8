#include <algorithm>

#include "cpu/kernels.h"

namespace temper {

// out[N,C] = table[tokens[n], :]
void embedding_forward(ThreadPool& pool, float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = lo; n < hi; n++) std::copy(table + (int64_t)tokens[n] * C, table + (int64_t)(tokens[n] + 1) * C, out + n * C);
  });
}

// dtable[tokens[n], :] += dout[n, :]
// Threads own column ranges, not rows: a token repeated in the batch must not be written by two threads.
void embedding_backward(ThreadPool& pool, float* dtable, const float* dout, const int32_t* tokens, int64_t N,
                        int64_t C) {
  pool.chunks(C, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = 0; n < N; n++) {
      float* d = dtable + (int64_t)tokens[n] * C;
      const float* s = dout + n * C;
      for (int64_t c = lo; c < hi; c++) d[c] += s[c];
    }
  });
}

}  // namespace temper
