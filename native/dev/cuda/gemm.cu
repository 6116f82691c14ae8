// Matrix products: C[M,N] = alpha * op(A) op(B) + bias (+ C).
//   version 1: naive, one thread per output (fp32)            -- the floor, for the timing table
//   version 2: the engine's SIMT fp32 kernel (checking mode)  -- src/cuda/gemm.cu
//   version 3: the engine's bf16 tensor-core kernel (mma.sync m16n8k16, fp32 accumulate), with
//              split-K where the plan asks for it
// Checked in every layout the engine uses (NT forward, NN input gradient, TN weight gradient),
// on sizes that are multiples of no tile, against a double-precision CPU product of the same
// (for version 3: bf16-rounded) inputs. Then timed on the Qwen2-0.5B shapes.
// Build: make gemm   Run: ./gemm
#include "../../src/cuda/gemm.cu"
#include "common.h"

using namespace temper::cuda;

__global__ void naive(float* C, const float* A, const float* B, int M, int N, int K, int lda, int ldb, bool ta,
                      bool tb) {
  int m = blockIdx.y * 16 + threadIdx.y, n = blockIdx.x * 16 + threadIdx.x;
  if (m >= M || n >= N) return;
  float acc = 0;
  for (int k = 0; k < K; k++) acc += (ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
  C[m * N + n] = acc;
}

struct Case {
  int M, N, K;
  bool ta, tb, bias, accumulate, split;
};

static std::vector<float> round_bf16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); i++) r[i] = bf16_value(bf16_bits(v[i]));
  return r;
}

static bool check(const Case& c, int version, int sms, unsigned seed) {
  const int lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  auto a = random_vec((size_t)c.M * c.K, seed), b = random_vec((size_t)c.K * c.N, seed + 1);
  auto bias = random_vec(c.N, seed + 2), c0 = random_vec((size_t)c.M * c.N, seed + 3);
  const bool bf = version == 3;
  auto ar = bf ? round_bf16(a) : a, br = bf ? round_bf16(b) : b;
  const float alpha = 0.75f;
  std::vector<double> ref((size_t)c.M * c.N);
  for (int m = 0; m < c.M; m++)
    for (int n = 0; n < c.N; n++) {
      double s = 0;
      for (int k = 0; k < c.K; k++)
        s += (double)(c.ta ? ar[(size_t)k * lda + m] : ar[(size_t)m * lda + k]) *
             (c.tb ? br[(size_t)n * ldb + k] : br[(size_t)k * ldb + n]);
      ref[(size_t)m * c.N + n] = alpha * s + (c.bias ? bias[n] : 0.0) + (c.accumulate ? c0[(size_t)m * c.N + n] : 0.0);
    }
  float *dA = to_device(a), *dB = to_device(b), *dbias = to_device(bias), *dC = to_device(c0);
  bf16* dB16 = nullptr;
  if (bf) {
    std::vector<uint16_t> bits(b.size());
    for (size_t i = 0; i < b.size(); i++) bits[i] = bf16_bits(b[i]);
    DEV_CHECK(cudaMalloc(&dB16, bits.size() * 2));
    DEV_CHECK(cudaMemcpy(dB16, bits.data(), bits.size() * 2, cudaMemcpyHostToDevice));
  }
  if (!c.accumulate) poison(dC, (size_t)c.M * c.N);
  Operand A{dA, false, lda, c.ta};
  // Version 3 reads B as bf16 where the engine does (weights: NT and NN), as fp32 otherwise.
  const bool b_is_bf16 = bf && !c.ta;
  Operand Bop{b_is_bf16 ? (const void*)dB16 : (const void*)dB, b_is_bf16, ldb, c.tb};
  gemm(0, version == 2, sms, c.M, c.N, c.K, alpha, A, Bop, c.accumulate, dC, c.N, c.bias ? dbias : nullptr, c.split);
  auto out = to_host(dC, (size_t)c.M * c.N);
  char what[128];
  std::snprintf(what, sizeof what, "v%d %dx%dx%d %s%s%s%s", version, c.M, c.N, c.K, c.ta ? "T" : "N", c.tb ? "T" : "N",
                c.bias ? " bias" : "", c.split ? " split" : (c.accumulate ? " acc" : ""));
  bool ok = report(what, rel_err(out, ref), 2e-5);
  cudaFree(dA), cudaFree(dB), cudaFree(dbias), cudaFree(dC), cudaFree(dB16);
  return ok;
}

int main() {
  const int sms = device_sms();
  bool ok = true;
  std::printf("correctness\n");
  const Case cases[] = {
      {77, 131, 67, false, true, true, false, false},   // forward, odd sizes
      {256, 384, 512, false, true, false, true, false}, // forward, accumulate
      {33, 896, 4864, false, true, false, false, true}, // decode-like: small tile + split-K
      {40, 200, 96, false, true, true, true, true},     // split-K onto existing C, with bias
      {129, 70, 97, false, false, false, true, false},  // input gradient, NN
      {95, 61, 300, true, false, false, true, false},   // weight gradient, TN, accumulate
      {8, 8, 8, false, true, false, false, false},
      {1, 1, 1, false, false, false, false, false},
  };
  unsigned seed = 1;
  for (const Case& c : cases) {
    ok &= check(c, 2, sms, seed += 7);
    ok &= check(c, 3, sms, seed += 7);
  }

  std::printf("timing (median of 20)\n");
  struct Shape {
    const char* name;
    int M, N, K;
    bool ta, tb;
  } shapes[] = {
      {"train q/o  8192x896x896   NT", 8192, 896, 896, false, true},
      {"train up   8192x4864x896  NT", 8192, 4864, 896, false, true},
      {"train head 8192x151936x896 NT", 8192, 151936, 896, false, true},
      {"dX down    8192x4864x896  NN", 8192, 4864, 896, false, false},
      {"dW up      4864x896x8192  TN", 4864, 896, 8192, true, false},
      {"decode up  256x4864x896   NT", 256, 4864, 896, false, true},
      {"decode dn  256x896x4864   NT", 256, 896, 4864, false, true},
      {"decode head 256x151936x896 NT", 256, 151936, 896, false, true},
  };
  std::printf("  %-32s %12s %12s %12s\n", "shape", "v1 TFLOP/s", "v2 TFLOP/s", "v3 TFLOP/s");
  for (auto& s : shapes) {
    const size_t a_n = (size_t)s.M * s.K, b_n = (size_t)s.K * s.N, c_n = (size_t)s.M * s.N;
    float *A, *Bf, *C;
    bf16* B16;
    DEV_CHECK(cudaMalloc(&A, a_n * 4));
    DEV_CHECK(cudaMalloc(&Bf, b_n * 4));
    DEV_CHECK(cudaMalloc(&B16, b_n * 2));
    DEV_CHECK(cudaMalloc(&C, c_n * 4));
    auto ha = random_vec(a_n, 5), hb = random_vec(b_n, 6);  // never time zeros
    DEV_CHECK(cudaMemcpy(A, ha.data(), a_n * 4, cudaMemcpyHostToDevice));
    DEV_CHECK(cudaMemcpy(Bf, hb.data(), b_n * 4, cudaMemcpyHostToDevice));
    std::vector<uint16_t> bits(b_n);
    for (size_t i = 0; i < b_n; i++) bits[i] = bf16_bits(hb[i]);
    DEV_CHECK(cudaMemcpy(B16, bits.data(), b_n * 2, cudaMemcpyHostToDevice));
    const int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    const double flop = 2.0 * s.M * s.N * s.K;
    float t1 = time_ms([&] { naive<<<dim3((s.N + 15) / 16, (s.M + 15) / 16), dim3(16, 16)>>>(C, A, Bf, s.M, s.N, s.K, lda, ldb, s.ta, s.tb); }, 3, 1);
    float t2 = time_ms([&] { gemm(0, true, sms, s.M, s.N, s.K, 1.0f, {A, false, lda, s.ta}, {Bf, false, ldb, s.tb}, false, C, s.N, nullptr); }, 5, 1);
    const bool wb = !s.ta;  // weights in bf16 where the engine has them
    float t3 = time_ms([&] {
      gemm(0, false, sms, s.M, s.N, s.K, 1.0f, {A, false, lda, s.ta}, {wb ? (const void*)B16 : (const void*)Bf, wb, ldb, s.tb},
           false, C, s.N, nullptr, s.M <= 256);
    });
    std::printf("  %-32s %12.2f %12.2f %12.2f\n", s.name, flop / t1 / 1e9, flop / t2 / 1e9, flop / t3 / 1e9);
    cudaFree(A), cudaFree(Bf), cudaFree(B16), cudaFree(C);
  }
  std::printf(ok ? "gemm: all checks passed\n" : "gemm: CHECKS FAILED\n");
  return ok ? 0 : 1;
}
