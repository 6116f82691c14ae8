// Matrix products. The tensor-core kernel: bf16 mma.sync m16n8k16 with fp32 accumulators,
// 32-deep K stages double-buffered through registers, operands of either type and either layout
// rounded to bf16 as they enter shared memory (stored there K-contiguous, rows padded by 16 bytes
// so the fragment loads hit 32 different banks). The SIMT kernel is the fp32 checking mode.
#include "cuda/kernels.cuh"
#include "cuda/plan.h"

namespace temper {
namespace cuda {

namespace {

struct GemmArgs {
  const void* A;
  const void* B;
  float* C;
  const float* bias;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha;
  int accumulate, atomic, a_vec, b_vec;
  int64_t k_tiles_per_split;
};

constexpr int BK = (int)kGemmBK;
constexpr int SROW = BK + 8;  // bf16 per shared row: 80 bytes, 20 banks apart

__device__ __forceinline__ uint32_t pack2(float a, float b) {
  __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<uint32_t*>(&h);
}

// 8 consecutive elements of a row (along the contiguous dimension) as 8 bf16.
template <typename T>
__device__ __forceinline__ uint4 load8(const T* p, bool full, int valid);
template <>
__device__ __forceinline__ uint4 load8<float>(const float* p, bool full, int valid) {
  float v[8];
  if (full) {
    float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = i < valid ? p[i] : 0.0f;
  }
  return make_uint4(pack2(v[0], v[1]), pack2(v[2], v[3]), pack2(v[4], v[5]), pack2(v[6], v[7]));
}
template <>
__device__ __forceinline__ uint4 load8<bf16>(const bf16* p, bool full, int valid) {
  if (full) return *reinterpret_cast<const uint4*>(p);
  uint4 r;
  bf16* h = reinterpret_cast<bf16*>(&r);
#pragma unroll
  for (int i = 0; i < 8; i++) h[i] = i < valid ? p[i] : __float2bfloat16_rn(0.0f);
  return r;
}

// A ROWS x BK tile of a logical [rows, K] operand, staged in registers then stored to shared
// memory as S[row][k]. KC: the operand is K-contiguous (element (r, k) at p[r*ld + k]); else
// row-contiguous (at p[k*ld + r]), and the tile is transposed on its way in.
template <typename T, bool KC, int ROWS, int THREADS>
struct TileLoader {
  static constexpr int CHUNKS = ROWS * BK / 8 / THREADS;
  static_assert(CHUNKS >= 1 && ROWS * BK / 8 % THREADS == 0, "tile does not split evenly over the threads");
  uint4 v[CHUNKS];

  __device__ __forceinline__ void load(const T* p, int64_t ld, int64_t row0, int64_t rows, int64_t k0, int64_t K,
                                       bool vec) {
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
      int chunk = threadIdx.x + c * THREADS;
      if (KC) {
        int r = chunk / (BK / 8), kc = chunk % (BK / 8) * 8;
        int64_t row = row0 + r, k = k0 + kc;
        if (row < rows && k < K) {
          int valid = (int)(K - k < 8 ? K - k : 8);
          v[c] = load8<T>(p + row * ld + k, vec && valid == 8, valid);
        } else {
          v[c] = make_uint4(0, 0, 0, 0);
        }
      } else {
        int k = chunk / (ROWS / 8), rc = chunk % (ROWS / 8) * 8;
        int64_t kk = k0 + k, row = row0 + rc;
        if (kk < K && row < rows) {
          int valid = (int)(rows - row < 8 ? rows - row : 8);
          v[c] = load8<T>(p + kk * ld + row, vec && valid == 8, valid);
        } else {
          v[c] = make_uint4(0, 0, 0, 0);
        }
      }
    }
  }

  __device__ __forceinline__ void store(bf16* S) const {
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
      int chunk = threadIdx.x + c * THREADS;
      if (KC) {
        int r = chunk / (BK / 8), kc = chunk % (BK / 8) * 8;
        *reinterpret_cast<uint4*>(S + r * SROW + kc) = v[c];
      } else {
        int k = chunk / (ROWS / 8), rc = chunk % (ROWS / 8) * 8;
        const bf16* h = reinterpret_cast<const bf16*>(&v[c]);
#pragma unroll
        for (int i = 0; i < 8; i++) S[(rc + i) * SROW + k] = h[i];
      }
    }
  }
};

__device__ __forceinline__ void mma_bf16(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Block tile BM x BN over WM x WN warps; each warp owns (BM/WM) x (BN/WN) = MT x NT mma tiles.
template <int BM, int BN, int WM, int WN, typename TA, bool AKC, typename TB, bool BKC>
__global__ void __launch_bounds__(WM * WN * 32) gemm_mma(GemmArgs g) {
  constexpr int THREADS = WM * WN * 32, MT = BM / WM / 16, NT = BN / WN / 8;
  __shared__ __align__(16) bf16 As[2][BM * SROW];
  __shared__ __align__(16) bf16 Bs[2][BN * SROW];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, grp = lane >> 2, tig = lane & 3;
  const int wm0 = warp / WN * (BM / WM), wn0 = warp % WN * (BN / WN);
  const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
  const int64_t kt_begin = (int64_t)blockIdx.z * g.k_tiles_per_split;
  const int64_t k_tiles = (g.K + BK - 1) / BK;
  const int64_t kt_end = kt_begin + g.k_tiles_per_split < k_tiles ? kt_begin + g.k_tiles_per_split : k_tiles;
  const TA* A = static_cast<const TA*>(g.A);
  const TB* B = static_cast<const TB*>(g.B);

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

  TileLoader<TA, AKC, BM, THREADS> la;
  TileLoader<TB, BKC, BN, THREADS> lb;
  if (kt_begin < kt_end) {
    la.load(A, g.lda, m0, g.M, kt_begin * BK, g.K, g.a_vec);
    lb.load(B, g.ldb, n0, g.N, kt_begin * BK, g.K, g.b_vec);
    la.store(As[0]);
    lb.store(Bs[0]);
  }
  __syncthreads();
  for (int64_t kt = kt_begin; kt < kt_end; kt++) {
    const int buf = (int)((kt - kt_begin) & 1);
    const bool more = kt + 1 < kt_end;
    if (more) {  // the next stage's global loads fly while this stage computes
      la.load(A, g.lda, m0, g.M, (kt + 1) * BK, g.K, g.a_vec);
      lb.load(B, g.ldb, n0, g.N, (kt + 1) * BK, g.K, g.b_vec);
    }
    const bf16* as = As[buf];
    const bf16* bs = Bs[buf];
#pragma unroll
    for (int ks = 0; ks < BK; ks += 16) {
      uint32_t af[MT][4], bfr[NT][2];
#pragma unroll
      for (int i = 0; i < MT; i++) {
        const bf16* r0 = as + (wm0 + i * 16 + grp) * SROW + ks + 2 * tig;
        const bf16* r8 = r0 + 8 * SROW;
        af[i][0] = *reinterpret_cast<const uint32_t*>(r0);
        af[i][1] = *reinterpret_cast<const uint32_t*>(r8);
        af[i][2] = *reinterpret_cast<const uint32_t*>(r0 + 8);
        af[i][3] = *reinterpret_cast<const uint32_t*>(r8 + 8);
      }
#pragma unroll
      for (int j = 0; j < NT; j++) {
        const bf16* c0 = bs + (wn0 + j * 8 + grp) * SROW + ks + 2 * tig;
        bfr[j][0] = *reinterpret_cast<const uint32_t*>(c0);
        bfr[j][1] = *reinterpret_cast<const uint32_t*>(c0 + 8);
      }
#pragma unroll
      for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++) mma_bf16(acc[i][j], af[i], bfr[j]);
    }
    if (more) {
      la.store(As[buf ^ 1]);
      lb.store(Bs[buf ^ 1]);
    }
    __syncthreads();
  }

  const bool add_bias = g.bias && blockIdx.z == 0;
#pragma unroll
  for (int i = 0; i < MT; i++)
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int64_t row = m0 + wm0 + i * 16 + grp + (e >= 2 ? 8 : 0);
        int64_t col = n0 + wn0 + j * 8 + 2 * tig + (e & 1);
        if (row >= g.M || col >= g.N) continue;
        float v = g.alpha * acc[i][j][e] + (add_bias ? g.bias[col] : 0.0f);
        float* c = g.C + row * g.ldc + col;
        if (g.atomic) atomicAdd(c, v);
        else *c = g.accumulate ? *c + v : v;
      }
}

// fp32 SIMT: 64 x 64 tiles, 16 deep, 256 threads with 4 x 4 outputs each (strided by 16 so
// shared reads broadcast or hit distinct banks).
template <bool AKC, bool BKC>
__global__ void __launch_bounds__(256) gemm_fp32(GemmArgs g) {
  constexpr int T = 64, D = 16;
  __shared__ float As[D][T + 1], Bs[D][T + 1];
  const float* A = static_cast<const float*>(g.A);
  const float* B = static_cast<const float*>(g.B);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = (int64_t)blockIdx.y * T, n0 = (int64_t)blockIdx.x * T;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < g.K; k0 += D) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int e = threadIdx.x + 256 * i;
      int r = AKC ? e / D : e % T, k = AKC ? e % D : e / T;
      int64_t row = m0 + r, kk = k0 + k;
      As[k][r] = row < g.M && kk < g.K ? (AKC ? A[row * g.lda + kk] : A[kk * g.lda + row]) : 0.0f;
      int rb = BKC ? e / D : e % T, kb = BKC ? e % D : e / T;
      int64_t col = n0 + rb, kk2 = k0 + kb;
      Bs[kb][rb] = col < g.N && kk2 < g.K ? (BKC ? B[col * g.ldb + kk2] : B[kk2 * g.ldb + col]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < D; k++)
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += As[k][ty + 16 * i] * Bs[k][tx + 16 * j];
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t row = m0 + ty + 16 * i, col = n0 + tx + 16 * j;
      if (row >= g.M || col >= g.N) continue;
      float v = g.alpha * acc[i][j] + (g.bias ? g.bias[col] : 0.0f);
      float* c = g.C + row * g.ldc + col;
      *c = g.accumulate ? *c + v : v;
    }
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

template <int BM, int BN, int WM, int WN, typename TA, bool AKC, typename TB, bool BKC>
void launch_mma(cudaStream_t s, const GemmPlan& p, const GemmArgs& g) {
  dim3 grid((unsigned)p.grid_n, (unsigned)p.grid_m, (unsigned)p.splits);
  gemm_mma<BM, BN, WM, WN, TA, AKC, TB, BKC><<<grid, WM * WN * 32, 0, s>>>(g);
  CUDA_LAUNCHED("gemm_mma");
}

}  // namespace

void gemm(cudaStream_t s, bool fp32, int sms, int64_t M, int64_t N, int64_t K, float alpha, Operand a, Operand b,
          bool accumulate, float* C, int64_t ldc, const float* bias, bool split_ok) {
  if (M == 0 || N == 0) return;
  GemmArgs g{a.p, b.p, C, bias, M, N, K, a.ld, b.ld, ldc, alpha, accumulate ? 1 : 0, 0, 0, 0, 0};
  // The kernels index op(A) by rows m and op(B) by columns n, each with K along one dimension.
  const bool akc = !a.trans, bkc = b.trans;
  if (fp32) {
    if (a.is_bf16 || b.is_bf16) throw std::runtime_error("gemm: fp32 mode was given a bf16 operand");
    g.k_tiles_per_split = 0;
    dim3 grid((unsigned)ceil_div(N, 64), (unsigned)ceil_div(M, 64));
    if (akc && bkc) gemm_fp32<true, true><<<grid, 256, 0, s>>>(g);
    else if (akc) gemm_fp32<true, false><<<grid, 256, 0, s>>>(g);
    else if (bkc) gemm_fp32<false, true><<<grid, 256, 0, s>>>(g);
    else gemm_fp32<false, false><<<grid, 256, 0, s>>>(g);
    CUDA_LAUNCHED("gemm_fp32");
    return;
  }
  if (a.is_bf16) throw std::runtime_error("gemm: the left operand is always fp32 (activations or gradients)");
  const bool forward_layout = akc && bkc;
  GemmPlan p = plan_gemm(M, N, K, sms, forward_layout, split_ok);
  g.k_tiles_per_split = p.k_tiles_per_split;
  g.a_vec = a.ld % 4 == 0 && aligned16(a.p);
  g.b_vec = b.is_bf16 ? (b.ld % 8 == 0 && aligned16(b.p)) : (b.ld % 4 == 0 && aligned16(b.p));
  if (p.splits > 1) {
    g.atomic = 1;
    if (!accumulate) CUDA_CHECK(cudaMemset2DAsync(C, ldc * sizeof(float), 0, N * sizeof(float), M, s));
  }
  if (p.tile == GemmTile::Small64) {
    if (b.is_bf16) launch_mma<64, 64, 2, 2, float, true, bf16, true>(s, p, g);
    else launch_mma<64, 64, 2, 2, float, true, float, true>(s, p, g);
  } else if (akc && bkc) {
    if (b.is_bf16) launch_mma<128, 128, 2, 4, float, true, bf16, true>(s, p, g);
    else launch_mma<128, 128, 2, 4, float, true, float, true>(s, p, g);
  } else if (akc) {
    if (b.is_bf16) launch_mma<128, 128, 2, 4, float, true, bf16, false>(s, p, g);
    else launch_mma<128, 128, 2, 4, float, true, float, false>(s, p, g);
  } else if (!bkc && !b.is_bf16) {
    launch_mma<128, 128, 2, 4, float, false, float, false>(s, p, g);
  } else {
    throw std::runtime_error("gemm: no tensor-core kernel for a transposed left operand with this right operand");
  }
}

}  // namespace cuda
}  // namespace temper
