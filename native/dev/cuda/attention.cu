// Attention: the engine's flash-style training kernels (forward; backward as dsum + dq + dk/dv)
// and the KV-cache decode kernel (fp32 and bf16 caches), against a double-precision CPU
// reference of causal grouped-query attention, then timed on the Qwen2-0.5B shape.
//   version 1: the engine's fp32 SIMT kernels (src/cuda/attention.cu)
//   (next: a tensor-core version, mma.sync over 64-row tiles; add it here as version 2 first)
// Build: make attention   Run: ./attention
#include "../../src/cuda/attention.cu"
#include "common.h"

using namespace temper::cuda;

struct Ref {
  std::vector<double> out, lse, dq, dk, dv;
};

// q[B,T,H,D], k,v[B,T,KV,D]; dout[B,T,H,D].
static Ref reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                     const std::vector<float>& dout, int B, int T, int H, int KV, int D) {
  Ref r;
  r.out.assign((size_t)B * T * H * D, 0), r.lse.assign((size_t)B * H * T, 0);
  r.dq.assign(r.out.size(), 0), r.dk.assign((size_t)B * T * KV * D, 0), r.dv.assign(r.dk.size(), 0);
  const double scale = 1.0 / std::sqrt((double)D);
  auto Q = [&](int b, int t, int h, int d) { return (double)q[(((size_t)b * T + t) * H + h) * D + d]; };
  auto Kx = [&](int b, int t, int g, int d) { return (double)k[(((size_t)b * T + t) * KV + g) * D + d]; };
  auto Vx = [&](int b, int t, int g, int d) { return (double)v[(((size_t)b * T + t) * KV + g) * D + d]; };
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const int g = h / (H / KV);
      for (int i = 0; i < T; i++) {
        std::vector<double> p(i + 1);
        double mx = -1e300;
        for (int j = 0; j <= i; j++) {
          double s = 0;
          for (int d = 0; d < D; d++) s += Q(b, i, h, d) * Kx(b, j, g, d);
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        double z = 0;
        for (auto& x : p) z += std::exp(x - mx);
        r.lse[((size_t)b * H + h) * T + i] = mx + std::log(z);
        for (auto& x : p) x = std::exp(x - mx) / z;
        const size_t o = (((size_t)b * T + i) * H + h) * D;
        for (int d = 0; d < D; d++) {
          double s = 0;
          for (int j = 0; j <= i; j++) s += p[j] * Vx(b, j, g, d);
          r.out[o + d] = s;
        }
        // backward of this row
        std::vector<double> dp(i + 1);
        double dsum = 0;
        for (int d = 0; d < D; d++) dsum += dout[o + d] * r.out[o + d];
        for (int j = 0; j <= i; j++) {
          double s = 0;
          for (int d = 0; d < D; d++) s += dout[o + d] * Vx(b, j, g, d);
          dp[j] = s;
          const size_t kv = (((size_t)b * T + j) * KV + g) * D;
          for (int d = 0; d < D; d++) r.dv[kv + d] += p[j] * dout[o + d];
        }
        for (int j = 0; j <= i; j++) {
          double ds = p[j] * (dp[j] - dsum) * scale;
          const size_t kv = (((size_t)b * T + j) * KV + g) * D;
          for (int d = 0; d < D; d++) {
            r.dq[o + d] += ds * Kx(b, j, g, d);
            r.dk[kv + d] += ds * Q(b, i, h, d);
          }
        }
      }
    }
  return r;
}

static bool check_training(int B, int T, int H, int KV, int D, unsigned seed) {
  const size_t nq = (size_t)B * T * H * D, nk = (size_t)B * T * KV * D;
  auto q = random_vec(nq, seed), k = random_vec(nk, seed + 1), v = random_vec(nk, seed + 2), dout = random_vec(nq, seed + 3);
  Ref r = reference(q, k, v, dout, B, T, H, KV, D);
  float *dq_in = to_device(q), *dk_in = to_device(k), *dv_in = to_device(v), *ddout = to_device(dout);
  float *out, *lse, *dq, *dk, *dv, *scratch;
  DEV_CHECK(cudaMalloc(&out, nq * 4));
  DEV_CHECK(cudaMalloc(&lse, (size_t)B * H * T * 4));
  DEV_CHECK(cudaMalloc(&dq, nq * 4));
  DEV_CHECK(cudaMalloc(&dk, nk * 4));
  DEV_CHECK(cudaMalloc(&dv, nk * 4));
  DEV_CHECK(cudaMalloc(&scratch, (size_t)B * H * T * 4));
  poison(out, nq), poison(lse, (size_t)B * H * T), poison(dq, nq), poison(dk, nk), poison(dv, nk);
  attention_forward(0, out, lse, dq_in, dk_in, dv_in, B, T, H, KV, D);
  attention_backward(0, dq, dk, dv, scratch, ddout, out, lse, dq_in, dk_in, dv_in, B, T, H, KV, D);
  char name[96];
  bool ok = true;
  std::snprintf(name, sizeof name, "B%d T%d H%d KV%d D%d", B, T, H, KV, D);
  std::printf(" %s\n", name);
  ok &= report("forward out", rel_err(to_host(out, nq), r.out), 1e-5);
  ok &= report("forward lse", rel_err(to_host(lse, (size_t)B * H * T), r.lse), 1e-5);
  ok &= report("backward dq", rel_err(to_host(dq, nq), r.dq), 1e-4);
  ok &= report("backward dk", rel_err(to_host(dk, nk), r.dk), 1e-4);
  ok &= report("backward dv", rel_err(to_host(dv, nk), r.dv), 1e-4);
  for (float* p : {dq_in, dk_in, dv_in, ddout, out, lse, dq, dk, dv, scratch}) cudaFree(p);
  return ok;
}

// Rows of several slots at different positions against a paged cache that holds the same keys and
// values as a training batch: each row must equal the training output at its position. The
// slots' blocks are scattered over the pool in a shuffled order, with spare blocks between them.
template <typename KVT>
static bool check_decode(int H, int KV, int D, unsigned seed) {
  const int slots = 3, block = 16, cap = 144, T = 140, width = cap / block, pool = slots * width + 5;
  const size_t nq = (size_t)slots * T * H * D, nk = (size_t)slots * T * KV * D;
  auto q = random_vec(nq, seed), k = random_vec(nk, seed + 1), v = random_vec(nk, seed + 2);
  if (sizeof(KVT) == 2)  // the reference sees what a bf16 cache holds
    for (auto* vec : {&k, &v})
      for (auto& x : *vec) x = bf16_value(bf16_bits(x));
  Ref r = reference(q, k, v, std::vector<float>(nq, 0.0f), slots, T, H, KV, D);
  // Write every position through kv_write (rows = all positions of all slots), then decode a few.
  std::vector<int32_t> slot, pos;
  for (int s = 0; s < slots; s++)
    for (int t = 0; t < T; t++) slot.push_back(s), pos.push_back(t);
  const int R = (int)slot.size();
  float *dk = to_device(k), *dv = to_device(v);
  int32_t *dslot = to_device(slot), *dpos = to_device(pos);
  std::vector<int32_t> ids(pool);
  for (int i = 0; i < pool; i++) ids[i] = (int32_t)((i * 7 + 3) % pool);  // 7 is prime to pool: a permutation
  std::vector<int32_t> table(ids.begin(), ids.begin() + slots * width);
  int32_t* dtable = to_device(table);
  KVT *kc, *vc;
  DEV_CHECK(cudaMalloc(&kc, (size_t)pool * KV * block * D * sizeof(KVT)));
  DEV_CHECK(cudaMalloc(&vc, (size_t)pool * KV * block * D * sizeof(KVT)));
  kv_write<KVT>(0, kc, vc, dk, dv, dslot, dpos, R, dtable, width, block, KV, D);
  std::vector<int32_t> rslot, rpos;
  std::vector<float> rq;
  std::vector<double> want;
  for (int s = 0; s < slots; s++)
    for (int t : {0, 1, 31, 32, 127, 128, 139}) {
      rslot.push_back(s), rpos.push_back(t);
      const size_t o = (((size_t)s * T + t) * H) * D;
      rq.insert(rq.end(), q.begin() + o, q.begin() + o + (size_t)H * D);
      want.insert(want.end(), r.out.begin() + o, r.out.begin() + o + (size_t)H * D);
    }
  const int n = (int)rslot.size();
  float *dq = to_device(rq), *out;
  int32_t *ds = to_device(rslot), *dp = to_device(rpos);
  DEV_CHECK(cudaMalloc(&out, (size_t)n * H * D * 4));
  poison(out, (size_t)n * H * D);
  attention_decode<KVT>(0, out, dq, kc, vc, ds, dp, n, dtable, width, block, H, KV, D);
  char name[96];
  std::snprintf(name, sizeof name, "decode %s cache H%d KV%d D%d", sizeof(KVT) == 2 ? "bf16" : "fp32", H, KV, D);
  bool ok = report(name, rel_err(to_host(out, (size_t)n * H * D), want), 1e-5);
  for (void* p : {(void*)dk, (void*)dv, (void*)dslot, (void*)dpos, (void*)dtable, (void*)kc, (void*)vc, (void*)dq, (void*)ds, (void*)dp, (void*)out}) cudaFree(p);
  return ok;
}

int main() {
  device_sms();
  bool ok = true;
  std::printf("correctness\n");
  ok &= check_training(2, 77, 4, 2, 64, 1);
  ok &= check_training(1, 40, 3, 1, 16, 2);
  ok &= check_training(1, 33, 2, 2, 128, 3);
  ok &= check_training(2, 64, 14, 2, 64, 4);
  ok &= check_decode<float>(14, 2, 64, 5);
  ok &= check_decode<bf16>(14, 2, 64, 6);
  ok &= check_decode<float>(4, 4, 128, 7);
  ok &= check_decode<bf16>(8, 1, 32, 8);

  std::printf("timing (median of 20): B8 T1024 H14 KV2 D64\n");
  const int B = 8, T = 1024, H = 14, KV = 2, D = 64;
  const size_t nq = (size_t)B * T * H * D, nk = (size_t)B * T * KV * D;
  auto hq = random_vec(nq, 9), hk = random_vec(nk, 10);
  float *q = to_device(hq), *k = to_device(hk), *v = to_device(hk), *dout = to_device(hq);
  float *out, *lse, *dq, *dk, *dv, *scratch;
  DEV_CHECK(cudaMalloc(&out, nq * 4));
  DEV_CHECK(cudaMalloc(&lse, (size_t)B * H * T * 4));
  DEV_CHECK(cudaMalloc(&dq, nq * 4));
  DEV_CHECK(cudaMalloc(&dk, nk * 4));
  DEV_CHECK(cudaMalloc(&dv, nk * 4));
  DEV_CHECK(cudaMalloc(&scratch, (size_t)B * H * T * 4));
  const double fwd_flop = 4.0 * B * H * (double)T * T * D / 2;  // causal half
  float tf = time_ms([&] { attention_forward(0, out, lse, q, k, v, B, T, H, KV, D); });
  float tb = time_ms([&] { attention_backward(0, dq, dk, dv, scratch, dout, out, lse, q, k, v, B, T, H, KV, D); });
  std::printf("  forward  %8.3f ms  %7.2f TFLOP/s\n", tf, fwd_flop / tf / 1e9);
  std::printf("  backward %8.3f ms  %7.2f TFLOP/s (2.5x forward's flops)\n", tb, 2.5 * fwd_flop / tb / 1e9);
  // Decode: 256 rows, each at position 1023 of its own slot, bf16 cache.
  const int R = 256, cap = 1024;
  bf16 *kc, *vc;
  DEV_CHECK(cudaMalloc(&kc, (size_t)R * KV * cap * D * 2));
  DEV_CHECK(cudaMalloc(&vc, (size_t)R * KV * cap * D * 2));
  DEV_CHECK(cudaMemset(kc, 0x3c, (size_t)R * KV * cap * D * 2));
  DEV_CHECK(cudaMemset(vc, 0x3c, (size_t)R * KV * cap * D * 2));
  std::vector<int32_t> s(R), p(R, cap - 1);
  for (int i = 0; i < R; i++) s[i] = i;
  int32_t *ds = to_device(s), *dp = to_device(p);
  float td = time_ms([&] { attention_decode<bf16>(0, out, q, kc, vc, ds, dp, R, cap, H, KV, D); });
  const double bytes = 2.0 * R * KV * cap * D * 2;
  std::printf("  decode   %8.3f ms  %7.1f GB/s of cache read (256 rows x 1024 positions, bf16)\n", td, bytes / td / 1e6);
  std::printf(ok ? "attention: all checks passed\n" : "attention: CHECKS FAILED\n");
  return ok ? 0 : 1;
}
