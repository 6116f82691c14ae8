#include <cmath>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace temper {

// logprob[n] = logits[n,target] - logsumexp(logits[n,:]); entropy[n] = lse - Σ p_j logits_j
void logprob_forward(ThreadPool& pool, float* logprob, float* entropy, float* lse, const float* logits,
                     const int32_t* target, int64_t N, int64_t V) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = lo; n < hi; n++) {
      if (target[n] < 0) {
        logprob[n] = 0;
        lse[n] = 0;
        if (entropy) entropy[n] = 0;
        continue;
      }
      const float* l = logits + n * V;
      float mx = l[0];
      for (int64_t j = 1; j < V; j++) mx = std::max(mx, l[j]);
      thread_local std::vector<float> e;
      if ((int64_t)e.size() < V) e.resize(V);
      double sum = exp_shifted(e.data(), l, mx, V);
      double z = mx + std::log(sum);
      lse[n] = (float)z;
      logprob[n] = (float)(l[target[n]] - z);
      if (entropy) {
        double wsum = 0;
        for (int64_t j = 0; j < V; j++) wsum += e[j] * (l[j] - mx);
        entropy[n] = (float)(std::log(sum) - wsum / sum);
      }
    }
  });
}

// dlogits[n,:] = w[n] * (onehot(target) - softmax(logits[n,:]))
void logprob_backward(ThreadPool& pool, float* dlogits, const float* logits, const float* lse, const int32_t* target,
                      const float* w, int64_t N, int64_t V) {
  pool.chunks(N, [&](int64_t lo, int64_t hi, int) {
    for (int64_t n = lo; n < hi; n++) {
      float* d = dlogits + n * V;
      const float* l = logits + n * V;
      if (target[n] < 0 || w[n] == 0) {
        for (int64_t j = 0; j < V; j++) d[j] = 0;
        continue;
      }
      float wn = w[n];
      exp_shifted(d, l, lse[n], V);
      for (int64_t j = 0; j < V; j++) d[j] *= -wn;
      d[target[n]] += wn;
    }
  });
}

}  // namespace temper
