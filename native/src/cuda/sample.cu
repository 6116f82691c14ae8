// Token sampling on the device, one block per pick, the same rule as the CPU engine's pick():
// greedy at temperature 0; else p = softmax(logits / temperature), cut to the top_k largest,
// then to the smallest top set holding top_p of what is left, each cut a threshold on p found by
// bisection over the bits of a float (no sort); the draw walks the kept tokens in vocabulary
// order with the uniform number the host drew from the completion's own stream. The log-prob
// returned is the unmodified model's (temperature 1, no cut), what logprobs() reports.
#include "cuda/kernels.cuh"

namespace temper {
namespace cuda {

namespace {

constexpr int kThreads = 1024;

struct Row {
  const float* l;
  int64_t V;
  float mx, inv_t;
  __device__ float p(int64_t j) const { return __expf((l[j] - mx) * inv_t); }
};

// Mass and count of p >= t over the row; every thread gets both.
__device__ void at_least(const Row& r, float t, float* scratch, float* mass, float* count) {
  float m = 0, c = 0;
  for (int64_t j = threadIdx.x; j < r.V; j += blockDim.x) {
    float p = r.p(j);
    if (p >= t) m += p, c += 1;
  }
  *mass = block_sum(m, scratch);
  *count = block_sum(c, scratch);
}

// The largest t in [floor, 1] (as float bits) whose ok(mass, count) holds; ok(floor) must hold.
template <typename Ok>
__device__ float highest(const Row& r, float floor, float* scratch, Ok ok) {
  uint32_t lo = __float_as_uint(floor), hi = 0x3F800000u;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    float m, c;
    at_least(r, __uint_as_float(mid), scratch, &m, &c);
    if (ok(m, c)) lo = mid;
    else hi = mid - 1;
  }
  return __uint_as_float(lo);
}

struct AtLeastCount {
  float k;
  __device__ bool operator()(float, float c) const { return c >= k; }
};
struct AtLeastMass {
  float target;
  __device__ bool operator()(float m, float) const { return m >= target; }
};

__global__ void __launch_bounds__(kThreads) sample_k(int32_t* token, float* logprob, const float* logits,
                                                     const int64_t* row_of, const double* u, int64_t V,
                                                     float temperature, int64_t top_k, float top_p) {
  __shared__ float scratch[32];
  __shared__ float best_v[32];
  __shared__ int64_t best_i[32];
  __shared__ double chunk_mass[kThreads];
  __shared__ int hit;
  const int64_t pick = blockIdx.x;
  const float* l = logits + row_of[pick] * V;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  // The first index of the largest logit.
  float bv = -INFINITY;
  int64_t bi = V;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x)
    if (l[j] > bv) bv = l[j], bi = j;
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
  }
  if (lane == 0) best_v[warp] = bv, best_i[warp] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
      if (best_v[w] > best_v[0] || (best_v[w] == best_v[0] && best_i[w] < best_i[0])) best_v[0] = best_v[w], best_i[0] = best_i[w];
  }
  __syncthreads();
  const float mx = best_v[0];
  const int64_t arg = best_i[0];
  float s = 0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += __expf(l[j] - mx);
  const float lse = mx + logf(block_sum(s, scratch));
  if (temperature <= 0) {
    if (threadIdx.x == 0) token[pick] = (int32_t)arg, logprob[pick] = l[arg] - lse;
    return;
  }

  Row r{l, V, mx, 1.0f / temperature};
  float cut = 0, mass, count;
  if (top_k > 0 && top_k < V) cut = highest(r, 0.0f, scratch, AtLeastCount{(float)top_k});
  if (top_p < 1) {
    at_least(r, cut, scratch, &mass, &count);
    cut = highest(r, cut, scratch, AtLeastMass{top_p * mass});
  }

  // Each thread owns a contiguous chunk so that "first kept token whose running mass passes the
  // draw" keeps the CPU's vocabulary order.
  const int64_t per = (V + blockDim.x - 1) / blockDim.x, j0 = threadIdx.x * per,
                j1 = j0 + per < V ? j0 + per : V;
  double mine = 0;
  for (int64_t j = j0; j < j1; j++) {
    float p = r.p(j);
    if (p >= cut) mine += p;
  }
  chunk_mass[threadIdx.x] = mine;
  if (threadIdx.x == 0) hit = -1;
  __syncthreads();
  if (threadIdx.x == 0) {  // exclusive prefix sums, in place (1024 adds)
    double run = 0;
    for (int t = 0; t < (int)blockDim.x; t++) {
      double m = chunk_mass[t];
      chunk_mass[t] = run;
      run += m;
    }
    const double target = u[pick] * run;
    int last = -1;
    for (int t = 0; t < (int)blockDim.x; t++) {
      double next = t + 1 < (int)blockDim.x ? chunk_mass[t + 1] : run;
      if (next > chunk_mass[t]) last = t;
      if (target < next && next > chunk_mass[t]) {
        hit = t;
        break;
      }
    }
    if (hit < 0) hit = last;  // rounding put the draw past the end: the last kept token wins
    if (hit < 0) hit = 0;     // (no mass at all cannot happen: the top token has p = 1; still, answer)
    chunk_mass[0] = target;  // thread `hit` needs the draw; chunk 0's start is 0 anyway
  }
  __syncthreads();
  if ((int)threadIdx.x == hit) {
    const double start = hit > 0 ? chunk_mass[hit] : 0.0;
    const double target = chunk_mass[0];
    double acc = start;
    int64_t chosen = arg;
    for (int64_t j = j0; j < j1; j++) {
      float p = r.p(j);
      if (p < cut) continue;
      acc += p;
      chosen = j;
      if (target < acc) break;
    }
    token[pick] = (int32_t)chosen;
    logprob[pick] = l[chosen] - lse;
  }
}

}  // namespace

void sample(cudaStream_t s, int32_t* token, float* logprob, const float* logits, const int64_t* row_of,
            const double* u, int64_t picks, int64_t V, float temperature, int64_t top_k, float top_p) {
  if (picks == 0) return;
  sample_k<<<(unsigned)picks, kThreads, 0, s>>>(token, logprob, logits, row_of, u, V, temperature, top_k, top_p);
  CUDA_LAUNCHED("sample");
}

}  // namespace cuda
}  // namespace temper
