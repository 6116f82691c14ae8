// Causal grouped-query attention without the T x T matrix (flash-style): each block streams
// key/value tiles through shared memory and keeps a running max and sum per query row, so
// memory is O(T) and the softmax never leaves the chip. The backward recomputes the
// probabilities from the saved log-normaliser: one kernel for dq (blocks own query tiles), one
// for dk and dv (blocks own key tiles and loop over the query heads of their group), no atomics.
// Generation reads a slot-based KV cache: one block per (row, key/value head) serves the query
// heads of the group, reading each cached key and value once.
//
// Layout inside a block: 4 warps x 8 rows; in the score phase lane j is key j of the tile,
// in the accumulate phase lane l holds dims l, l+32, l+64, l+96 (head_dim <= 128, plan.h).
// These are fp32 SIMT kernels; a tensor-core version is the next step (dev/cuda/attention.cu).
#include "cuda/kernels.cuh"
#include "cuda/plan.h"

namespace temper {
namespace cuda {

namespace {

constexpr int TILE = 32, WARPS = 4, RPW = TILE / WARPS, THREADS = WARPS * 32, DU = (int)kMaxHeadDim / 32;

__global__ void __launch_bounds__(THREADS) flash_forward_k(float* out, float* lse, const float* q, const float* k,
                                                           const float* v, int T, int H, int KV, int D, float scale) {
  extern __shared__ float sm[];
  float* Qs = sm;                      // [TILE][D]      broadcast reads
  float* Ks = Qs + TILE * D;           // [TILE][D + 1]  lane = key
  float* Vs = Ks + TILE * (D + 1);     // [TILE][D]      lane = dim
  const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV), q0 = blockIdx.x * TILE;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t HD = (int64_t)H * D, KD = (int64_t)KV * D;
  for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
    int r = e / D, d = e % D, t = q0 + r;
    Qs[e] = t < T ? q[((int64_t)b * T + t) * HD + (int64_t)h * D + d] : 0.0f;
  }
  float acc[RPW][DU], m[RPW], l[RPW];
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    m[i] = -INFINITY, l[i] = 0;
#pragma unroll
    for (int u = 0; u < DU; u++) acc[i][u] = 0;
  }
  const int tiles = q0 / TILE + 1;
  for (int kt = 0; kt < tiles; kt++) {
    const int k0 = kt * TILE;
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
      int j = e / D, d = e % D, t = k0 + j;
      int64_t at = ((int64_t)b * T + t) * KD + (int64_t)g * D + d;
      Ks[j * (D + 1) + d] = t < T ? k[at] : 0.0f;
      Vs[j * D + d] = t < T ? v[at] : 0.0f;
    }
    __syncthreads();
    float s[RPW];
#pragma unroll
    for (int i = 0; i < RPW; i++) s[i] = 0;
    for (int d = 0; d < D; d++) {
      float kd = Ks[lane * (D + 1) + d];
#pragma unroll
      for (int i = 0; i < RPW; i++) s[i] += Qs[(warp * RPW + i) * D + d] * kd;
    }
    const int key = k0 + lane;
#pragma unroll
    for (int i = 0; i < RPW; i++) {
      const int qt = q0 + warp * RPW + i;
      const bool valid = key <= qt && key < T;
      float si = valid ? s[i] * scale : -INFINITY;
      float m_new = fmaxf(m[i], warp_max(si));
      float p = valid ? __expf(si - m_new) : 0.0f;
      float corr = __expf(m[i] - m_new);
      l[i] = l[i] * corr + warp_sum(p);
      m[i] = m_new;
#pragma unroll
      for (int u = 0; u < DU; u++) acc[i][u] *= corr;
      for (int j = 0; j < TILE; j++) {
        float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int u = 0; u < DU; u++) {
          int d = lane + 32 * u;
          if (d < D) acc[i][u] += pj * Vs[j * D + d];
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    const int qt = q0 + warp * RPW + i;
    if (qt >= T) continue;
    float inv = 1.0f / l[i];
#pragma unroll
    for (int u = 0; u < DU; u++) {
      int d = lane + 32 * u;
      if (d < D) out[((int64_t)b * T + qt) * HD + (int64_t)h * D + d] = acc[i][u] * inv;
    }
    if (lane == 0) lse[((int64_t)b * H + h) * T + qt] = m[i] + logf(l[i]);
  }
}

// dsum[b,h,t] = Σ_d dout · out, one warp per (row, head).
__global__ void attention_dsum_k(float* dsum, const float* dout, const float* out, int64_t B, int T, int H, int D) {
  int64_t w = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  if (w >= B * T * H) return;
  const int lane = threadIdx.x & 31;
  int64_t bt = w / H;
  int h = (int)(w % H);
  const float *o = out + w * D, *d = dout + w * D;
  float s = 0;
  for (int i = lane; i < D; i += 32) s += o[i] * d[i];
  s = warp_sum(s);
  if (lane == 0) dsum[(bt / T * H + h) * T + bt % T] = s;
}

__global__ void __launch_bounds__(THREADS) flash_dq_k(float* dq, const float* dout, const float* lse,
                                                      const float* dsum, const float* q, const float* k,
                                                      const float* v, int T, int H, int KV, int D, float scale) {
  extern __shared__ float sm[];
  float* Qs = sm;                   // [TILE][D]
  float* dOs = Qs + TILE * D;       // [TILE][D]
  float* Ks = dOs + TILE * D;       // [TILE][D + 1]
  float* Vs = Ks + TILE * (D + 1);  // [TILE][D + 1]
  const int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV), q0 = blockIdx.x * TILE;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t HD = (int64_t)H * D, KD = (int64_t)KV * D;
  for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
    int r = e / D, d = e % D, t = q0 + r;
    int64_t at = ((int64_t)b * T + t) * HD + (int64_t)h * D + d;
    Qs[e] = t < T ? q[at] : 0.0f;
    dOs[e] = t < T ? dout[at] : 0.0f;
  }
  float acc[RPW][DU], L[RPW], Ds[RPW];
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    int qt = q0 + warp * RPW + i;
    int64_t at = ((int64_t)b * H + h) * T + (qt < T ? qt : T - 1);
    L[i] = lse[at], Ds[i] = dsum[at];
#pragma unroll
    for (int u = 0; u < DU; u++) acc[i][u] = 0;
  }
  const int tiles = q0 / TILE + 1;
  for (int kt = 0; kt < tiles; kt++) {
    const int k0 = kt * TILE;
    __syncthreads();
    for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
      int j = e / D, d = e % D, t = k0 + j;
      int64_t at = ((int64_t)b * T + t) * KD + (int64_t)g * D + d;
      Ks[j * (D + 1) + d] = t < T ? k[at] : 0.0f;
      Vs[j * (D + 1) + d] = t < T ? v[at] : 0.0f;
    }
    __syncthreads();
    float s[RPW], dp[RPW];
#pragma unroll
    for (int i = 0; i < RPW; i++) s[i] = 0, dp[i] = 0;
    for (int d = 0; d < D; d++) {
      float kd = Ks[lane * (D + 1) + d], vd = Vs[lane * (D + 1) + d];
#pragma unroll
      for (int i = 0; i < RPW; i++) {
        s[i] += Qs[(warp * RPW + i) * D + d] * kd;
        dp[i] += dOs[(warp * RPW + i) * D + d] * vd;
      }
    }
    const int key = k0 + lane;
#pragma unroll
    for (int i = 0; i < RPW; i++) {
      const int qt = q0 + warp * RPW + i;
      const bool valid = key <= qt && key < T && qt < T;
      float p = valid ? __expf(s[i] * scale - L[i]) : 0.0f;
      float ds = p * (dp[i] - Ds[i]);
      for (int j = 0; j < TILE; j++) {
        float dsj = __shfl_sync(0xffffffffu, ds, j);
#pragma unroll
        for (int u = 0; u < DU; u++) {
          int d = lane + 32 * u;
          if (d < D) acc[i][u] += dsj * Ks[j * (D + 1) + d];
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    const int qt = q0 + warp * RPW + i;
    if (qt >= T) continue;
#pragma unroll
    for (int u = 0; u < DU; u++) {
      int d = lane + 32 * u;
      if (d < D) dq[((int64_t)b * T + qt) * HD + (int64_t)h * D + d] = acc[i][u] * scale;
    }
  }
}

__global__ void __launch_bounds__(THREADS) flash_dkv_k(float* dk, float* dv, const float* dout, const float* lse,
                                                       const float* dsum, const float* q, const float* k,
                                                       const float* v, int T, int H, int KV, int D, float scale) {
  extern __shared__ float sm[];
  float* Ks = sm;                     // [TILE][D]      broadcast (warp's keys)
  float* Vs = Ks + TILE * D;          // [TILE][D]
  float* Qs = Vs + TILE * D;          // [TILE][D + 1]  lane = query row
  float* dOs = Qs + TILE * (D + 1);   // [TILE][D + 1]
  float* Ls = dOs + TILE * (D + 1);   // [TILE]
  float* Dss = Ls + TILE;             // [TILE]
  const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * TILE, group = H / KV;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t HD = (int64_t)H * D, KD = (int64_t)KV * D;
  for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
    int j = e / D, d = e % D, t = k0 + j;
    int64_t at = ((int64_t)b * T + t) * KD + (int64_t)g * D + d;
    Ks[e] = t < T ? k[at] : 0.0f;
    Vs[e] = t < T ? v[at] : 0.0f;
  }
  float dka[RPW][DU], dva[RPW][DU];
#pragma unroll
  for (int i = 0; i < RPW; i++)
#pragma unroll
    for (int u = 0; u < DU; u++) dka[i][u] = 0, dva[i][u] = 0;
  const int qtiles = (T + TILE - 1) / TILE;
  for (int h = g * group; h < (g + 1) * group; h++) {
    for (int qt = k0 / TILE; qt < qtiles; qt++) {
      const int q0 = qt * TILE;
      __syncthreads();
      for (int e = threadIdx.x; e < TILE * D; e += THREADS) {
        int r = e / D, d = e % D, t = q0 + r;
        int64_t at = ((int64_t)b * T + t) * HD + (int64_t)h * D + d;
        Qs[r * (D + 1) + d] = t < T ? q[at] : 0.0f;
        dOs[r * (D + 1) + d] = t < T ? dout[at] : 0.0f;
      }
      if (threadIdx.x < TILE) {
        int t = q0 + threadIdx.x;
        int64_t at = ((int64_t)b * H + h) * T + (t < T ? t : T - 1);
        Ls[threadIdx.x] = lse[at];
        Dss[threadIdx.x] = dsum[at];
      }
      __syncthreads();
      float s[RPW], dp[RPW];
#pragma unroll
      for (int i = 0; i < RPW; i++) s[i] = 0, dp[i] = 0;
      for (int d = 0; d < D; d++) {
        float qd = Qs[lane * (D + 1) + d], od = dOs[lane * (D + 1) + d];
#pragma unroll
        for (int i = 0; i < RPW; i++) {
          s[i] += Ks[(warp * RPW + i) * D + d] * qd;
          dp[i] += Vs[(warp * RPW + i) * D + d] * od;
        }
      }
      const int qrow = q0 + lane;
#pragma unroll
      for (int i = 0; i < RPW; i++) {
        const int key = k0 + warp * RPW + i;
        const bool valid = key <= qrow && qrow < T && key < T;
        float p = valid ? __expf(s[i] * scale - Ls[lane]) : 0.0f;
        float ds = p * (dp[i] - Dss[lane]);
        for (int j = 0; j < TILE; j++) {
          float pj = __shfl_sync(0xffffffffu, p, j), dsj = __shfl_sync(0xffffffffu, ds, j);
#pragma unroll
          for (int u = 0; u < DU; u++) {
            int d = lane + 32 * u;
            if (d < D) {
              dva[i][u] += pj * dOs[j * (D + 1) + d];
              dka[i][u] += dsj * Qs[j * (D + 1) + d];
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    const int key = k0 + warp * RPW + i;
    if (key >= T) continue;
#pragma unroll
    for (int u = 0; u < DU; u++) {
      int d = lane + 32 * u;
      if (d >= D) continue;
      int64_t at = ((int64_t)b * T + key) * KD + (int64_t)g * D + d;
      dk[at] = dka[i][u] * scale;
      dv[at] = dva[i][u];
    }
  }
}

// Where (slot, position p, kv head h) starts in a layer's pool [blocks, KV, block, D].
__device__ __forceinline__ int64_t cache_at(const int32_t* table, int64_t width, int64_t block, int64_t slot,
                                            int64_t p, int64_t h, int64_t KV, int64_t D) {
  return (((int64_t)table[slot * width + p / block] * KV + h) * block + p % block) * D;
}

template <typename KVT>
__global__ void kv_write_k(KVT* kc, KVT* vc, const float* k, const float* v, const int32_t* slot, const int32_t* pos,
                           int64_t R, const int32_t* table, int64_t width, int64_t block, int64_t KV, int64_t D) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < R * KV * D; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / (KV * D), hd = i % (KV * D), h = hd / D, d = hd % D;
    int64_t at = cache_at(table, width, block, slot[r], pos[r], h, KV, D) + d;
    kc[at] = from_float<KVT>(k[i]);
    vc[at] = from_float<KVT>(v[i]);
  }
}

constexpr int CHUNK = 128, MAX_GROUP = 16, DECODE_OUT = MAX_GROUP * (int)kMaxHeadDim / THREADS;

// One block per (row, key/value head): the group's query heads against positions [0, pos[r]].
template <typename KVT>
__global__ void __launch_bounds__(THREADS) decode_k(float* out, const float* q, const KVT* kc, const KVT* vc,
                                                    const int32_t* slot, const int32_t* pos, const int32_t* table,
                                                    int64_t width, int64_t block, int H, int KV, int D, float scale) {
  extern __shared__ float sm[];
  const int G = H / KV;
  float* qs = sm;              // [G][D], pre-scaled
  float* sc = qs + G * D;      // [G][CHUNK] scores, then probabilities
  float* ms = sc + G * CHUNK;  // [G] running max
  float* ls = ms + G;          // [G] running sum
  float* as = ls + G;          // [G] this chunk's rescale factor
  const int64_t r = blockIdx.x;
  const int kvh = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t P = (int64_t)pos[r] + 1;
  const int64_t sl = slot[r];
  for (int e = threadIdx.x; e < G * D; e += THREADS) qs[e] = q[(r * H + (int64_t)kvh * G) * D + e] * scale;
  if (threadIdx.x < G) ms[threadIdx.x] = -INFINITY, ls[threadIdx.x] = 0;
  float acc[DECODE_OUT];
#pragma unroll
  for (int i = 0; i < DECODE_OUT; i++) acc[i] = 0;
  for (int64_t c0 = 0; c0 < P; c0 += CHUNK) {
    const int n = (int)(P - c0 < CHUNK ? P - c0 : CHUNK);
    __syncthreads();
    if ((int)threadIdx.x < n) {
      const KVT* kr = kc + cache_at(table, width, block, sl, c0 + threadIdx.x, kvh, KV, D);
      float dots[MAX_GROUP];
#pragma unroll
      for (int gi = 0; gi < MAX_GROUP; gi++) dots[gi] = 0;
      for (int d = 0; d < D; d++) {
        float kd = to_float(kr[d]);
#pragma unroll
        for (int gi = 0; gi < MAX_GROUP; gi++)
          if (gi < G) dots[gi] += qs[gi * D + d] * kd;
      }
#pragma unroll
      for (int gi = 0; gi < MAX_GROUP; gi++)
        if (gi < G) sc[gi * CHUNK + threadIdx.x] = dots[gi];
    }
    __syncthreads();
    for (int gi = warp; gi < G; gi += WARPS) {
      float mx = -INFINITY;
      for (int j = lane; j < n; j += 32) mx = fmaxf(mx, sc[gi * CHUNK + j]);
      mx = warp_max(mx);
      const float m_new = fmaxf(ms[gi], mx);
      float sum = 0;
      for (int j = lane; j < n; j += 32) {
        float e = __expf(sc[gi * CHUNK + j] - m_new);
        sc[gi * CHUNK + j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        as[gi] = __expf(ms[gi] - m_new);
        ls[gi] = ls[gi] * as[gi] + sum;
        ms[gi] = m_new;
      }
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < DECODE_OUT; i++) {
      int o = threadIdx.x + THREADS * i;
      if (o >= G * D) break;
      int gi = o / D, d = o % D;
      float a = acc[i] * as[gi];
      const float* p = sc + gi * CHUNK;
      for (int j = 0; j < n; j++) a += p[j] * to_float(vc[cache_at(table, width, block, sl, c0 + j, kvh, KV, D) + d]);
      acc[i] = a;
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < DECODE_OUT; i++) {
    int o = threadIdx.x + THREADS * i;
    if (o >= G * D) break;
    int gi = o / D;
    out[(r * H + (int64_t)kvh * G) * D + o] = acc[i] / ls[gi];
  }
}

size_t forward_smem(int D) { return sizeof(float) * (TILE * D * 2 + TILE * (D + 1)); }
size_t dq_smem(int D) { return sizeof(float) * (TILE * D * 2 + TILE * (D + 1) * 2); }
size_t dkv_smem(int D) { return sizeof(float) * (TILE * D * 2 + TILE * (D + 1) * 2 + 2 * TILE); }

// Kernels above 48 KB of shared memory must say so once per device.
template <typename K>
void allow_smem(K kernel, size_t bytes) {
  if (bytes > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void check_shape(int64_t H, int64_t KV, int64_t D) {
  std::string why = attention_unsupported(D);
  if (!why.empty()) throw std::runtime_error(why);
  if (H / KV > MAX_GROUP)
    throw std::runtime_error("the CUDA decode attention serves at most " + std::to_string(MAX_GROUP) +
                             " query heads per key/value head (this model has " + std::to_string(H / KV) + ")");
}

}  // namespace

void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  check_shape(H, KV, D);
  size_t smem = forward_smem((int)D);
  allow_smem(flash_forward_k, smem);
  dim3 grid((unsigned)ceil_div(T, TILE), (unsigned)H, (unsigned)B);
  flash_forward_k<<<grid, THREADS, smem, s>>>(out, lse, q, k, v, (int)T, (int)H, (int)KV, (int)D,
                                              1.0f / sqrtf((float)D));
  CUDA_LAUNCHED("flash_forward");
}

void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, float* scratch, const float* dout,
                        const float* out, const float* lse, const float* q, const float* k, const float* v,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  check_shape(H, KV, D);
  const float scale = 1.0f / sqrtf((float)D);
  attention_dsum_k<<<(unsigned)ceil_div(B * T * H, 8), 256, 0, s>>>(scratch, dout, out, B, (int)T, (int)H, (int)D);
  CUDA_LAUNCHED("attention_dsum");
  size_t smem = dq_smem((int)D);
  allow_smem(flash_dq_k, smem);
  flash_dq_k<<<dim3((unsigned)ceil_div(T, TILE), (unsigned)H, (unsigned)B), THREADS, smem, s>>>(
      dq, dout, lse, scratch, q, k, v, (int)T, (int)H, (int)KV, (int)D, scale);
  CUDA_LAUNCHED("flash_dq");
  smem = dkv_smem((int)D);
  allow_smem(flash_dkv_k, smem);
  flash_dkv_k<<<dim3((unsigned)ceil_div(T, TILE), (unsigned)KV, (unsigned)B), THREADS, smem, s>>>(
      dk, dv, dout, lse, scratch, q, k, v, (int)T, (int)H, (int)KV, (int)D, scale);
  CUDA_LAUNCHED("flash_dkv");
}

template <typename KVT>
void kv_write(cudaStream_t s, KVT* kcache, KVT* vcache, const float* k, const float* v, const int32_t* slot,
              const int32_t* pos, int64_t R, const int32_t* table, int64_t width, int64_t block, int64_t KV,
              int64_t D) {
  if (R == 0) return;
  int64_t blocks = ceil_div(R * KV * D, 256);
  kv_write_k<KVT><<<(unsigned)(blocks < 65535 ? blocks : 65535), 256, 0, s>>>(kcache, vcache, k, v, slot, pos, R, table,
                                                                             width, block, KV, D);
  CUDA_LAUNCHED("kv_write");
}

template <typename KVT>
void attention_decode(cudaStream_t s, float* out, const float* q, const KVT* kcache, const KVT* vcache,
                      const int32_t* slot, const int32_t* pos, int64_t R, const int32_t* table, int64_t width,
                      int64_t block, int64_t H, int64_t KV, int64_t D) {
  if (R == 0) return;
  check_shape(H, KV, D);
  const int64_t G = H / KV;
  size_t smem = sizeof(float) * (G * D + G * CHUNK + 3 * G);
  decode_k<KVT><<<dim3((unsigned)R, (unsigned)KV), THREADS, smem, s>>>(out, q, kcache, vcache, slot, pos, table, width,
                                                                       block, (int)H, (int)KV, (int)D,
                                                                       1.0f / sqrtf((float)D));
  CUDA_LAUNCHED("attention_decode");
}

#define TEMPER_KV_OPS(KVT)                                                                                          \
  template void kv_write<KVT>(cudaStream_t, KVT*, KVT*, const float*, const float*, const int32_t*, const int32_t*, \
                              int64_t, const int32_t*, int64_t, int64_t, int64_t, int64_t);                         \
  template void attention_decode<KVT>(cudaStream_t, float*, const float*, const KVT*, const KVT*, const int32_t*,   \
                                      const int32_t*, int64_t, const int32_t*, int64_t, int64_t, int64_t, int64_t,  \
                                      int64_t);
TEMPER_KV_OPS(float)
TEMPER_KV_OPS(bf16)
#undef TEMPER_KV_OPS

}  // namespace cuda
}  // namespace temper
