// The memory-bound layers: embedding, RMSNorm, RoPE, SwiGLU, residual adds, bias and column
// gradients, bf16 copies. One pass over the data each; rows go to warps, elements to threads.
#include "cuda/kernels.cuh"

namespace temper {
namespace cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n, int64_t per_block = kThreads) {
  int64_t b = ceil_div(n, per_block);
  return (unsigned)(b < 65535 * 16 ? b : 65535 * 16);
}

__global__ void embedding_forward_k(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * C; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = table[(int64_t)tokens[i / C] * C + i % C];
}

__global__ void embedding_backward_k(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * C; i += (int64_t)gridDim.x * blockDim.x)
    atomicAdd(&dtable[(int64_t)tokens[i / C] * C + i % C], dout[i]);
}

// One warp per row.
__global__ void rmsnorm_forward_k(float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                                  float eps) {
  int64_t n = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  const int lane = threadIdx.x & 31;
  const float* xr = x + n * C;
  float ss = 0;
  for (int64_t c = lane; c < C; c += 32) ss += xr[c] * xr[c];
  ss = warp_sum(ss);
  float r = rsqrtf(ss / (float)C + eps);
  float* o = out + n * C;
  for (int64_t c = lane; c < C; c += 32) o[c] = xr[c] * r * w[c];
  if (rstd && lane == 0) rstd[n] = r;
}

// dx_i += r w_i do_i - x_i r^3 / C Σ_j w_j do_j x_j
__global__ void rmsnorm_backward_k(float* dx, const float* dout, const float* x, const float* w, const float* rstd,
                                   int64_t N, int64_t C) {
  int64_t n = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  if (n >= N) return;
  const int lane = threadIdx.x & 31;
  const float *xr = x + n * C, *dr = dout + n * C;
  float dot = 0;
  for (int64_t c = lane; c < C; c += 32) dot += w[c] * dr[c] * xr[c];
  dot = warp_sum(dot);
  const float r = rstd[n], k = dot * r * r * r / (float)C;
  float* d = dx + n * C;
  for (int64_t c = lane; c < C; c += 32) d[c] += r * w[c] * dr[c] - xr[c] * k;
}

// out[c] += Σ_n f(n, c): 32 columns by 8 row lanes per block, rows split over gridDim.y.
template <typename F>
__global__ void column_reduce_k(float* out, int64_t N, int64_t C, F f) {
  __shared__ float part[8][33];
  const int64_t c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0;
  if (c < C)
    for (int64_t n = blockIdx.y * 8 + threadIdx.y; n < N; n += (int64_t)gridDim.y * 8) acc += f(n, c);
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float s = 0;
    for (int i = 0; i < 8; i++) s += part[i][threadIdx.x];
    atomicAdd(&out[c], s);
  }
}

template <typename F>
void column_reduce(cudaStream_t s, float* out, int64_t N, int64_t C, F f) {
  int64_t ysplit = ceil_div(N, 64);
  dim3 grid((unsigned)ceil_div(C, 32), (unsigned)(ysplit < 256 ? ysplit : 256));
  column_reduce_k<F><<<grid, dim3(32, 8), 0, s>>>(out, N, C, f);
  CUDA_LAUNCHED("column_reduce");
}

struct RmsnormWeightGrad {
  const float *dout, *x, *rstd;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const { return dout[n * C + c] * x[n * C + c] * rstd[n]; }
};

struct Plain {
  const float* y;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const { return y[n * C + c]; }
};

// One thread per (row, head, i < D/2): the pair (x_i, x_{i+D/2}).
__global__ void rope_k(float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
                       const float* sin, bool inverse) {
  const int64_t half = D / 2, total = N * heads * half;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = t % half, nh = t / half, n = nh / heads;
    float* xh = x + nh * D;
    float c = cos[(int64_t)pos[n] * half + i], sn = sin[(int64_t)pos[n] * half + i];
    if (inverse) sn = -sn;
    float x1 = xh[i], x2 = xh[i + half];
    xh[i] = x1 * c - x2 * sn;
    xh[i + half] = x2 * c + x1 * sn;
  }
}

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + __expf(-g)); }

__global__ void swiglu_forward_k(float* h, const float* g, const float* u, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float gi = g[i];
    h[i] = gi * sigmoid(gi) * u[i];
  }
}

__global__ void swiglu_backward_k(float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float gi = g[i], sg = sigmoid(gi), d = dh[i];
    float ui = u[i];
    dg[i] = d * ui * sg * (1.0f + gi * (1.0f - sg));
    du[i] = d * gi * sg;
  }
}

__global__ void add_k(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void to_bf16_k(bf16* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void gather_rows_k(float* out, const float* in, const int64_t* idx, int64_t W, int64_t C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < W * C; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = in[idx[i / C] * C + i % C];
}

}  // namespace

void gather_rows(cudaStream_t s, float* out, const float* in, const int64_t* idx, int64_t W, int64_t C) {
  if (W == 0) return;
  gather_rows_k<<<grid_for(W * C), kThreads, 0, s>>>(out, in, idx, W, C);
  CUDA_LAUNCHED("gather_rows");
}

void embedding_forward(cudaStream_t s, float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  embedding_forward_k<<<grid_for(N * C), kThreads, 0, s>>>(out, tokens, table, N, C);
  CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(cudaStream_t s, float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  embedding_backward_k<<<grid_for(N * C), kThreads, 0, s>>>(dtable, dout, tokens, N, C);
  CUDA_LAUNCHED("embedding_backward");
}

void rmsnorm_forward(cudaStream_t s, float* out, float* rstd, const float* x, const float* w, int64_t N, int64_t C,
                     float eps) {
  rmsnorm_forward_k<<<(unsigned)ceil_div(N, 8), 256, 0, s>>>(out, rstd, x, w, N, C, eps);
  CUDA_LAUNCHED("rmsnorm_forward");
}

void rmsnorm_backward(cudaStream_t s, float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int64_t N, int64_t C) {
  rmsnorm_backward_k<<<(unsigned)ceil_div(N, 8), 256, 0, s>>>(dx, dout, x, w, rstd, N, C);
  CUDA_LAUNCHED("rmsnorm_backward");
  if (dw) column_reduce(s, dw, N, C, RmsnormWeightGrad{dout, x, rstd, C});
}

void rope(cudaStream_t s, float* x, const int32_t* pos, int64_t N, int64_t heads, int64_t D, const float* cos,
          const float* sin, bool inverse) {
  rope_k<<<grid_for(N * heads * (D / 2)), kThreads, 0, s>>>(x, pos, N, heads, D, cos, sin, inverse);
  CUDA_LAUNCHED("rope");
}

void swiglu_forward(cudaStream_t s, float* h, const float* g, const float* u, int64_t n) {
  swiglu_forward_k<<<grid_for(n), kThreads, 0, s>>>(h, g, u, n);
  CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(cudaStream_t s, float* dg, float* du, const float* dh, const float* g, const float* u, int64_t n) {
  swiglu_backward_k<<<grid_for(n), kThreads, 0, s>>>(dg, du, dh, g, u, n);
  CUDA_LAUNCHED("swiglu_backward");
}

void add(cudaStream_t s, float* out, const float* a, const float* b, int64_t n) {
  add_k<<<grid_for(n), kThreads, 0, s>>>(out, a, b, n);
  CUDA_LAUNCHED("add");
}

void column_sums(cudaStream_t s, float* dbias, const float* dy, int64_t N, int64_t O) {
  column_reduce(s, dbias, N, O, Plain{dy, O});
}

void to_bf16(cudaStream_t s, bf16* out, const float* in, int64_t n) {
  to_bf16_k<<<grid_for(n), kThreads, 0, s>>>(out, in, n);
  CUDA_LAUNCHED("to_bf16");
}

// --- DoRA (kept here: the same column reductions) ---

namespace {

// One warp per output row.
__global__ void dora_norms_k(float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                             int64_t out, int64_t in) {
  int64_t o = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  if (o >= out) return;
  const int lane = threadIdx.x & 31;
  float ss = 0;
  for (int64_t i = lane; i < in; i += 32) {
    float v = w[o * in + i] + (dw ? dw[o * in + i] : 0.0f);
    ss += v * v;
  }
  ss = warp_sum(ss);
  if (lane == 0) {
    const float n = sqrtf(ss);
    if (norm) norm[o] = n;
    if (colscale) colscale[o] = mag[o] / n;
  }
}

__global__ void dora_scale_k(float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * out; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = i % out;
    if (z) z[i] = y[i];
    y[i] = y[i] * colscale[o] + (bias ? bias[o] : 0.0f);
  }
}

__global__ void scale_rows_k(float* x, const float* scale, int64_t R, int64_t C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R * C; i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= scale[i / C];
}

__global__ void dora_dz_k(float* dz, const float* dy, const float* colscale, int64_t N, int64_t out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * out; i += (int64_t)gridDim.x * blockDim.x)
    dz[i] = dy[i] * colscale[i % out];
}

struct DoraMagGrad {
  const float *dy, *z, *norm;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const { return dy[n * C + c] * z[n * C + c] / norm[c]; }
};

}  // namespace

void dora_norms(cudaStream_t s, float* norm, float* colscale, const float* w, const float* dw, const float* mag,
                int64_t out, int64_t in) {
  dora_norms_k<<<(unsigned)ceil_div(out, 8), 256, 0, s>>>(norm, colscale, w, dw, mag, out, in);
  CUDA_LAUNCHED("dora_norms");
}

void dora_scale(cudaStream_t s, float* y, float* z, const float* colscale, const float* bias, int64_t N, int64_t out) {
  dora_scale_k<<<grid_for(N * out), kThreads, 0, s>>>(y, z, colscale, bias, N, out);
  CUDA_LAUNCHED("dora_scale");
}

void scale_rows(cudaStream_t s, float* x, const float* scale, int64_t R, int64_t C) {
  scale_rows_k<<<grid_for(R * C), kThreads, 0, s>>>(x, scale, R, C);
  CUDA_LAUNCHED("scale_rows");
}

void dora_backward(cudaStream_t s, float* dz, float* dmag, const float* dy, const float* z, const float* colscale,
                   const float* norm, int64_t N, int64_t out) {
  if (dmag) column_reduce(s, dmag, N, out, DoraMagGrad{dy, z, norm, out});
  dora_dz_k<<<grid_for(N * out), kThreads, 0, s>>>(dz, dy, colscale, N, out);
  CUDA_LAUNCHED("dora_backward");
}

}  // namespace cuda
}  // namespace temper
