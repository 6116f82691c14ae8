// Log-softmax fused with the gather of the target's log-prob (and the entropy), one block per
// row: the [N, V] logits are read twice (max, then the sums) and nothing of size V is written.
// The backward writes softmax - onehot scaled by the row's weight, in place over the logits.
#include "cuda/kernels.cuh"

namespace temper {
namespace cuda {

namespace {

constexpr int kThreads = 512;

__global__ void logprob_forward_k(float* logprob, float* entropy, float* lse_out, const float* logits,
                                  const int32_t* target, int64_t V) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x;
  const float* l = logits + n * V;
  const int32_t t = target[n];
  if (t < 0) {
    if (threadIdx.x == 0) {
      logprob[n] = 0;
      if (entropy) entropy[n] = 0;
      lse_out[n] = 0;
    }
    return;
  }
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
  mx = block_max(mx, scratch);
  float s = 0, sl = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    float e = __expf(l[j] - mx);
    s += e;
    sl += e * l[j];
  }
  s = block_sum(s, scratch);
  sl = block_sum(sl, scratch);
  if (threadIdx.x == 0) {
    float lse = mx + logf(s);
    lse_out[n] = lse;
    logprob[n] = l[t] - lse;
    if (entropy) entropy[n] = lse - sl / s;
  }
}

__global__ void logprob_backward_k(float* dlogits, const float* logits, const float* lse, const int32_t* target,
                                   const float* w, int64_t V) {
  const int64_t n = blockIdx.x;
  const int32_t t = target[n];
  const float wn = t < 0 ? 0.0f : w[n], ln = lse[n];
  const float* l = logits + n * V;
  float* d = dlogits + n * V;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    float p = wn == 0.0f ? 0.0f : __expf(l[j] - ln);
    d[j] = wn * ((j == t ? 1.0f : 0.0f) - p);
  }
}

}  // namespace

void logprob_forward(cudaStream_t s, float* logprob, float* entropy, float* lse, const float* logits,
                     const int32_t* target, int64_t N, int64_t V) {
  if (N == 0) return;
  logprob_forward_k<<<(unsigned)N, kThreads, 0, s>>>(logprob, entropy, lse, logits, target, V);
  CUDA_LAUNCHED("logprob_forward");
}

void logprob_backward(cudaStream_t s, float* dlogits, const float* logits, const float* lse, const int32_t* target,
                      const float* w, int64_t N, int64_t V) {
  if (N == 0) return;
  logprob_backward_k<<<(unsigned)N, kThreads, 0, s>>>(dlogits, logits, lse, target, w, V);
  CUDA_LAUNCHED("logprob_backward");
}

}  // namespace cuda
}  // namespace temper
