// AdamW over one tensor in one pass: fp32 master, moments and gradient in, master and its bf16
// compute copy out. The gradient norm for clipping is a separate reduction (it must be complete
// before any tensor steps).
#include "cuda/kernels.cuh"

namespace temper {
namespace cuda {

namespace {

__global__ void adamw_k(float* p32, bf16* p16, const float* g, float* m, float* v, int64_t n, float gscale, float step,
                        float decay, float b1, float b2, float eps, float inv_bc2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float gi = g[i] * gscale;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float p = p32[i] * decay;
    p -= step * mi / (sqrtf(vi) * inv_bc2 + eps);
    p32[i] = p;
    if (p16) p16[i] = __float2bfloat16_rn(p);
  }
}

__global__ void sum_squares_k(double* acc, const float* g, int64_t n) {
  __shared__ float scratch[32];
  float s = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    s += g[i] * g[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) atomicAdd(acc, (double)s);
}

unsigned blocks(int64_t n) {
  int64_t b = ceil_div(n, 256);
  return (unsigned)(b < 4096 ? b : 4096);
}

}  // namespace

void adamw(cudaStream_t s, float* p32, bf16* p16, const float* g, float* m, float* v, int64_t n, float gscale,
           float step, float decay, float b1, float b2, float eps, float inv_bc2) {
  if (n == 0) return;
  adamw_k<<<blocks(n), 256, 0, s>>>(p32, p16, g, m, v, n, gscale, step, decay, b1, b2, eps, inv_bc2);
  CUDA_LAUNCHED("adamw");
}

void sum_squares(cudaStream_t s, double* acc, const float* g, int64_t n) {
  if (n == 0) return;
  sum_squares_k<<<blocks(n), 256, 0, s>>>(acc, g, n);
  CUDA_LAUNCHED("sum_squares");
}

}  // namespace cuda
}  // namespace temper
