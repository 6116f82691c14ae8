// Host-side decisions for the CUDA backend that need no device: GEMM tiling and split-K, the
// attention kernels' limits, and bf16 rounding as the device does it. Plain C++ so the unit
// tests build and run them on a machine without a GPU (native/test/cuda_host.test.ts).
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace temper {
namespace cuda {

// The tensor-core GEMM's tile shapes. Big tiles reuse each loaded element more; small ones
// put more blocks on the chip when the product is skinny (decode steps, adapters).
enum class GemmTile { Big128, Small64 };

struct GemmPlan {
  GemmTile tile = GemmTile::Big128;
  int64_t bm = 128, bn = 128;
  int64_t grid_m = 0, grid_n = 0;
  int64_t splits = 1;        // K is cut into this many ranges, summed with atomics
  int64_t k_tiles_per_split = 0;
};

constexpr int64_t kGemmBK = 32;  // K per shared-memory stage

// Picks the tile and split-K for C[M,N] += A[M,K] B[K,N] on a chip with `sms` multiprocessors.
// small_ok: the layout has a small-tile kernel (forward products against a weight).
// split_ok: the caller accepts a non-deterministic summation order (decode, not training).
inline GemmPlan plan_gemm(int64_t M, int64_t N, int64_t K, int sms, bool small_ok, bool split_ok) {
  GemmPlan p;
  auto blocks = [&](int64_t bm, int64_t bn) { return ((M + bm - 1) / bm) * ((N + bn - 1) / bn); };
  if (small_ok && blocks(128, 128) < sms) {
    p.tile = GemmTile::Small64;
    p.bm = p.bn = 64;
  }
  p.grid_m = (M + p.bm - 1) / p.bm;
  p.grid_n = (N + p.bn - 1) / p.bn;
  const int64_t k_tiles = (K + kGemmBK - 1) / kGemmBK;
  const int64_t have = p.grid_m * p.grid_n;
  if (split_ok && have < sms) {
    // Enough blocks for two waves, each split keeping at least four K tiles of work.
    int64_t want = (2 * (int64_t)sms + have - 1) / have;
    int64_t most = k_tiles / 4;
    p.splits = want < most ? want : most;
    if (p.splits > 16) p.splits = 16;
    if (p.splits < 1) p.splits = 1;
  }
  p.k_tiles_per_split = (k_tiles + p.splits - 1) / p.splits;
  // Splits that would start past K do nothing; drop them.
  p.splits = p.k_tiles_per_split ? (k_tiles + p.k_tiles_per_split - 1) / p.k_tiles_per_split : 1;
  if (p.splits < 1) p.splits = 1;
  return p;
}

// The attention kernels keep a head's row in registers as up to four values per lane.
constexpr int64_t kMaxHeadDim = 128;
inline std::string attention_unsupported(int64_t head_dim) {
  if (head_dim > kMaxHeadDim)
    return "head_dim " + std::to_string(head_dim) + " is above the CUDA attention kernels' limit of " +
           std::to_string(kMaxHeadDim);
  return "";
}

// Offsets of many buffers in one device allocation, each 256-byte aligned (what cudaMalloc
// guarantees, and what the vector loads need).
class ArenaLayout {
 public:
  static constexpr int64_t kAlign = 256;
  int64_t add(int64_t bytes) {
    int64_t at = total_;
    total_ += (bytes + kAlign - 1) / kAlign * kAlign;
    spans_.push_back({at, bytes});
    return at;
  }
  int64_t floats(int64_t n) { return add(n * 4); }
  int64_t total() const { return total_; }
  struct Span {
    int64_t at, bytes;
  };
  const std::vector<Span>& spans() const { return spans_; }

 private:
  int64_t total_ = 0;
  std::vector<Span> spans_;
};

// The model dimensions the training pass's buffers depend on.
struct PlanShape {
  int64_t vocab, hidden, inter, layers, heads, kv_heads, head_dim;
  // Per projection (q, k, v, o, gate, up, down): adapter rank (0: none) and DoRA.
  int64_t rank[7] = {0, 0, 0, 0, 0, 0, 0};
  bool dora[7] = {false, false, false, false, false, false, false};
};

// Byte offsets of everything one training batch keeps (per layer, for backward) and the
// scratch the backward pass reuses across layers.
struct LayerOffsets {
  int64_t x_in, ln1, rstd1, q, k, v, ao, lse, x_mid, ln2, rstd2, g, u, h;
  int64_t ax[7], z[7], norm[7], colscale[7];  // adapter saves, -1 where none
};
struct TrainPlan {
  int64_t B = 0, T = 0, N = 0;
  std::vector<LayerOffsets> layers;
  int64_t tokens, targets, pos, x_final, lnf, rstdf, logits, lse, lp, ent, w;
  int64_t tmp, dx, dln, dh, dg, du, dq, dk, dv, dao, dsum, dz, dax, dwtmp;  // scratch
  int64_t bytes = 0;
};

inline int64_t projection_out(const PlanShape& s, int i) {
  const int64_t Q = s.heads * s.head_dim, K = s.kv_heads * s.head_dim;
  const int64_t outs[7] = {Q, K, K, s.hidden, s.inter, s.inter, s.hidden};
  return outs[i];
}
inline int64_t projection_in(const PlanShape& s, int i) {
  const int64_t ins[7] = {s.hidden, s.hidden, s.hidden, s.heads * s.head_dim, s.hidden, s.hidden, s.inter};
  return ins[i];
}

inline TrainPlan plan_training(const PlanShape& s, int64_t B, int64_t T, bool backward) {
  TrainPlan p;
  ArenaLayout a;
  const int64_t N = B * T, C = s.hidden, Q = s.heads * s.head_dim, K = s.kv_heads * s.head_dim, F = s.inter;
  p.B = B, p.T = T, p.N = N;
  p.tokens = a.add(N * 4), p.targets = a.add(N * 4), p.pos = a.add(N * 4);
  p.layers.resize(s.layers);
  for (auto& L : p.layers) {
    L.x_in = a.floats(N * C), L.ln1 = a.floats(N * C), L.rstd1 = a.floats(N);
    L.q = a.floats(N * Q), L.k = a.floats(N * K), L.v = a.floats(N * K), L.ao = a.floats(N * Q);
    L.lse = a.floats(B * s.heads * T);
    L.x_mid = a.floats(N * C), L.ln2 = a.floats(N * C), L.rstd2 = a.floats(N);
    L.g = a.floats(N * F), L.u = a.floats(N * F), L.h = a.floats(N * F);
    for (int i = 0; i < 7; i++) {
      const int64_t out = projection_out(s, i);
      L.ax[i] = s.rank[i] ? a.floats(N * s.rank[i]) : -1;
      L.z[i] = s.dora[i] ? a.floats(N * out) : -1;
      L.norm[i] = s.dora[i] ? a.floats(out) : -1;
      L.colscale[i] = s.dora[i] ? a.floats(out) : -1;
    }
  }
  p.x_final = a.floats(N * C), p.lnf = a.floats(N * C), p.rstdf = a.floats(N);
  p.logits = a.floats(N * s.vocab), p.lse = a.floats(N), p.lp = a.floats(N), p.ent = a.floats(N), p.w = a.floats(N);
  int64_t widest = C > Q ? C : Q, rmax = 0, dw = 0;
  bool any_dora = false;
  for (int i = 0; i < 7; i++) {
    widest = widest > projection_out(s, i) ? widest : projection_out(s, i);
    rmax = rmax > s.rank[i] ? rmax : s.rank[i];
    if (s.dora[i]) {
      any_dora = true;
      int64_t n = projection_out(s, i) * projection_in(s, i);
      dw = dw > n ? dw : n;
    }
  }
  p.tmp = a.floats(N * C);
  // The backward's buffers, and the forward's adapter scratch (a DoRA forward needs B A).
  const int64_t nb = backward ? N : 0;
  p.dx = a.floats(nb * C), p.dln = a.floats(nb * C), p.dh = a.floats(nb * F), p.dg = a.floats(nb * F);
  p.du = a.floats(nb * F), p.dq = a.floats(nb * Q), p.dk = a.floats(nb * K), p.dv = a.floats(nb * K);
  p.dao = a.floats(nb * Q), p.dsum = a.floats(backward ? B * s.heads * T : 0);
  p.dz = a.floats(any_dora ? nb * widest : 0), p.dax = a.floats(N * rmax), p.dwtmp = a.floats(any_dora ? dw : 0);
  p.bytes = a.total();
  return p;
}

// How many completions hold a KV-cache slot at once during generate: all S of them, at most
// max_slots (the option; 0: 1024), fewer when their caches would take more than half of the
// device memory available for them; never fewer than one prompt's n samples (that is an error).
inline int64_t plan_kv_slots(int64_t S, int64_t n, int64_t max_slots, double bytes_per_slot, double available) {
  int64_t want = S < (max_slots > 0 ? max_slots : 1024) ? S : (max_slots > 0 ? max_slots : 1024);
  const double fit = available * 0.5 / bytes_per_slot;
  if ((double)want > fit) want = (int64_t)fit;
  if (want < n)
    throw std::runtime_error("the KV cache for the " + std::to_string(n) + " samples of one prompt (" +
                             std::to_string((int64_t)(bytes_per_slot / (1 << 20))) +
                             " MiB each) does not fit in half of the device's free memory (" +
                             std::to_string((int64_t)(available / (1 << 20))) + " MiB)");
  return want;
}

// fp32 -> bf16 with round-to-nearest-even, NaN kept a (quiet) NaN: what __float2bfloat16_rn does.
inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

inline float bf16_value(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace cuda
}  // namespace temper
