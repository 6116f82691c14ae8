// Host-side decisions for the CUDA backend that need no device: GEMM tiling and split-K, the
// attention kernels' limits, how many KV-cache slots fit, and bf16 rounding as the device does
// it. Plain C++ so the unit tests build and run them on a machine without a GPU
// (native/test/cuda_host.test.ts).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "backend/dtype.h"

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

// How many blocks the paged KV cache's pool holds during generate: enough for every completion at
// its longest (worst_blocks) when that fits in half of the device memory available, else what
// fits; never fewer than min_blocks, one completion at its longest (that is an error).
inline int64_t plan_kv_blocks(int64_t worst_blocks, int64_t min_blocks, double bytes_per_block, double available) {
  const double fit = available * 0.5 / bytes_per_block;
  const int64_t blocks = (double)worst_blocks <= fit ? worst_blocks : (int64_t)fit;
  if (blocks < min_blocks)
    throw std::runtime_error("the KV cache for one completion (" + std::to_string(min_blocks) + " blocks of " +
                             std::to_string((int64_t)(bytes_per_block / 1024)) +
                             " KiB) does not fit in half of the device's free memory (" +
                             std::to_string((int64_t)(available / (1 << 20))) + " MiB)");
  return blocks;
}

// How many completions hold a KV-cache slot (a block-table row and a row of the step's
// activations, bytes_per_slot) at once during generate: all S of them, at most max_slots (the
// option; 0: 1024), fewer when they would take more than half of the memory `available`; never
// fewer than one prompt's n samples (that is an error).
inline int64_t plan_kv_slots(int64_t S, int64_t n, int64_t max_slots, double bytes_per_slot, double available) {
  int64_t want = S < (max_slots > 0 ? max_slots : 1024) ? S : (max_slots > 0 ? max_slots : 1024);
  const double fit = available * 0.5 / bytes_per_slot;
  if ((double)want > fit) want = (int64_t)fit;
  if (want < n)
    throw std::runtime_error("the decode rows and logits of the " + std::to_string(n) + " samples of one prompt (" +
                             std::to_string((int64_t)(bytes_per_slot / 1024)) +
                             " KiB each) do not fit in half of the device memory left beside the KV cache (" +
                             std::to_string((int64_t)(available / (1 << 20))) + " MiB)");
  return want;
}

// bf16 rounding as the device does it (backend/dtype.h), under the names the harnesses use.
using ::temper::bf16_bits;
using ::temper::bf16_value;

}  // namespace cuda
}  // namespace temper
