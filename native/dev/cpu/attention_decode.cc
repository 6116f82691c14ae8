// The decode step's attention (attention_cached in src/cpu/attention.cc) over a paged KV cache, in
// the manner of dev/cuda: the engine's own source compiled in, checked against a double-precision
// reference, then timed per KV block size as a decode step meets it: R rows at `ctx` positions,
// every layer's blocks scattered over its pool (a random block table), the caches evicted between
// steps by a sweep over a large buffer (a step's weights do that in the engine).
//   make -C native/dev/cpu attention   (R CTX LAYERS HEADS KV_HEADS as arguments)
// Prints one JSON line per block size: ms per step over all layers, the KV bytes read per second.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu/kernels.h"

using namespace temper;

namespace {

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A pool of `blocks` blocks of `block` positions x kv_heads x D floats, on huge pages as the
// engine's scratch is.
float* pool_floats(size_t n) {
  const size_t huge = size_t(2) << 20, bytes = (n * sizeof(float) + huge - 1) / huge * huge;
  float* p = static_cast<float*>(std::aligned_alloc(huge, bytes));
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

struct Cache {
  int64_t block, per;  // positions per block, blocks per slot
  std::vector<float*> k, v;  // per layer
  std::vector<int32_t> table;
  KvLayer layer(int64_t l, int64_t slots) const {
    return {k[(size_t)l], v[(size_t)l], DType::F32, slots, per * block, block, table.data()};
  }
};

Cache make_cache(int64_t R, int64_t ctx, int64_t L, int64_t KV, int64_t D, int64_t block, std::mt19937& rng) {
  Cache c{block, (ctx + block - 1) / block, {}, {}, {}};
  const int64_t blocks = R * c.per;
  const size_t n = (size_t)(blocks * KV * block * D);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t l = 0; l < L; l++) {
    c.k.push_back(pool_floats(n));
    c.v.push_back(pool_floats(n));
    for (size_t i = 0; i < n; i++) c.k.back()[i] = normal(rng), c.v.back()[i] = normal(rng);
  }
  c.table.resize((size_t)blocks);
  for (int64_t i = 0; i < blocks; i++) c.table[(size_t)i] = (int32_t)i;
  std::shuffle(c.table.begin(), c.table.end(), rng);
  return c;
}

// Row r's output for head h in double: softmax(q k^T / sqrt(D)) v over its ctx positions.
double worst_error(const Cache& c, const float* q, const float* out, int64_t R, int64_t ctx, int64_t H, int64_t KV,
                   int64_t D) {
  double worst = 0;
  const KvLayer kl = c.layer(0, R);
  for (int64_t r = 0; r < R; r++)
    for (int64_t h = 0; h < H; h++) {
      const int64_t g = h / (H / KV);
      std::vector<double> s((size_t)ctx);
      double mx = -1e300, sum = 0;
      auto at = [&](int64_t p) {
        const int64_t blk = c.table[(size_t)(r * c.per + p / c.block)];
        return ((blk * KV + g) * c.block + p % c.block) * D;
      };
      for (int64_t p = 0; p < ctx; p++) {
        double d = 0;
        for (int64_t i = 0; i < D; i++) d += (double)q[(r * H + h) * D + i] * static_cast<const float*>(kl.k)[at(p) + i];
        mx = std::max(mx, s[(size_t)p] = d / std::sqrt((double)D));
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t i = 0; i < D; i++) {
        double o = 0;
        for (int64_t p = 0; p < ctx; p++) o += s[(size_t)p] / sum * static_cast<const float*>(kl.v)[at(p) + i];
        worst = std::max(worst, std::fabs(o - out[(r * H + h) * D + i]));
      }
    }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t R = argc > 1 ? std::atoll(argv[1]) : 64, ctx = argc > 2 ? std::atoll(argv[2]) : 612,
                L = argc > 3 ? std::atoll(argv[3]) : 24, H = argc > 4 ? std::atoll(argv[4]) : 14,
                KV = argc > 5 ? std::atoll(argv[5]) : 2, D = 64;
  ThreadPool pool(2);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q((size_t)(R * H * D)), out(q.size());
  for (float& x : q) x = normal(rng);
  std::vector<int32_t> slot((size_t)R), pos((size_t)R, (int32_t)(ctx - 1));
  for (int64_t r = 0; r < R; r++) slot[(size_t)r] = (int32_t)r;
  std::vector<float> evict((size_t)(64 << 20), 1.0f);  // 256 MB
  for (int64_t block : {16, 32, 64, 128, 256}) {
    const Cache c = make_cache(R, ctx, L, KV, D, block, rng);
    attention_cached(pool, out.data(), q.data(), c.layer(0, R), slot.data(), pos.data(), R, H, KV, D);
    const double err = worst_error(c, q.data(), out.data(), std::min<int64_t>(R, 4), ctx, H, KV, D);
    double best = 1e30;
    for (int rep = 0; rep < 8; rep++) {
      float sink = 0;
      for (size_t i = 0; i < evict.size(); i += 16) sink += evict[i];
      if (sink == 42.0f) std::printf("%f", sink);
      const double t = seconds();
      for (int64_t l = 0; l < L; l++)
        attention_cached(pool, out.data(), q.data(), c.layer(l, R), slot.data(), pos.data(), R, H, KV, D);
      best = std::min(best, seconds() - t);
    }
    const double bytes = 2.0 * R * ctx * KV * D * 4 * L;
    std::printf("{\"block\":%lld,\"rows\":%lld,\"ctx\":%lld,\"layers\":%lld,\"ms\":%.3f,\"kv_gb_per_s\":%.1f,\"max_abs_err\":%.2e}\n",
                (long long)block, (long long)R, (long long)ctx, (long long)L, best * 1e3, bytes / best * 1e-9, err);
    std::fflush(stdout);
    for (int64_t l = 0; l < L; l++) std::free(c.k[(size_t)l]), std::free(c.v[(size_t)l]);
  }
  return 0;
}
