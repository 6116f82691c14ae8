// The decode-step product kernels (src/cpu/gemm_small.cc) side by side with a double-precision
// reference and with OpenBLAS (the fp32 path before them), in the manner of dev/cuda: the
// engine's own source is compiled in, so this measures exactly what ships.
//   make -C native/dev/cpu run   (THREADS=2 BUDGET=0.3: seconds per measurement)
// For each of the Qwen2.5-0.5B shape's matrices and R = 1, 4, 16, 64 rows it checks every kernel
// against the reference (max error relative to Σ|x w|) and prints one JSON line per kernel:
// GFLOP/s and the weight's GB/s (bytes of W per call / time), columns split over `threads`.
#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "backend/dtype.h"
#include "cpu/kernels.h"

using namespace temper;

namespace {

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs fn until at least `budget` seconds have passed (and at least twice, the first a warm-up).
double time_per_call(const std::function<void()>& fn, double budget) {
  fn();
  int calls = 0;
  const double t0 = seconds();
  double t = t0;
  do {
    fn();
    calls++;
    t = seconds();
  } while (t - t0 < budget);
  return (t - t0) / calls;
}

// Buffers on 64-byte lines, as the engine's are (backend memory, AlignedFloats): from a
// std::vector's 16-byte alignment every 64-byte load splits across two lines, which alone cost the
// 16-row kernels about half their rate.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  bool operator==(const Aligned64&) const { return true; }
  bool operator!=(const Aligned64&) const { return false; }
};
template <class T>
using Vec = std::vector<T, Aligned64<T>>;

struct Kernel {
  const char* name;
  bool bf16;  // reads the bf16 copy of W
};

// Columns [lo, hi) of c[R, N] = x[R, K] · W^T by one kernel, on this thread.
void run_kernel(const std::string& name, int64_t R, int64_t lo, int64_t hi, int64_t N, int64_t K, const float* x,
                const float* w, const uint16_t* w16, float* c) {
  if (name == "openblas_f32") gemm_serial(false, true, R, hi - lo, K, 1.0f, x, K, w + lo * K, K, 0.0f, c + lo, N);
  else if (name == "small_f32") gemm_small_f32(R, lo, hi, K, 1.0f, x, K, w, K, 0.0f, c, N);
  else if (name == "small_bf16_widen") gemm_small_bf16_widen(R, lo, hi, K, 1.0f, x, K, w16, K, 0.0f, c, N);
  else gemm_small_bf16_dot(R, lo, hi, K, 1.0f, x, K, w16, K, 0.0f, c, N);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double budget = argc > 2 ? std::atof(argv[2]) : 0.3;
  openblas_set_num_threads(1);
  ThreadPool pool(threads);
  std::vector<Kernel> kernels = {{"openblas_f32", false}, {"small_f32", false}, {"small_bf16_widen", true}};
  if (gemm_small_has_dot_bf16()) kernels.push_back({"small_bf16_dot", true});
  else std::printf("{\"note\":\"no AVX512_BF16 on this CPU: small_bf16_dot skipped\"}\n");

  struct Shape { const char* name; int64_t N, K; };
  const Shape shapes[] = {{"q/o 896x896", 896, 896}, {"k/v 128x896", 128, 896}, {"gate/up 4864x896", 4864, 896},
                          {"down 896x4864", 896, 4864}, {"head 151936x896", 151936, 896}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Shape& s : shapes) {
    Vec<float> w((size_t)(s.N * s.K));
    Vec<uint16_t> w16(w.size());
    for (size_t i = 0; i < w.size(); i++) w16[i] = bf16_bits(w[i] = normal(rng) * 0.05f);
    for (int64_t R : {1, 4, 16, 64}) {
      Vec<float> x((size_t)(R * s.K)), c((size_t)(R * s.N));
      for (float& v : x) v = normal(rng);
      for (const Kernel& k : kernels) {
        auto call = [&] {
          const int64_t parts = std::min<int64_t>(threads, (s.N + 15) / 16), units = (s.N + 15) / 16;
          pool.run(parts, [&](int64_t p) {
            const int64_t lo = std::min(s.N, units * p / parts * 16), hi = std::min(s.N, units * (p + 1) / parts * 16);
            if (lo < hi) run_kernel(k.name, R, lo, hi, s.N, s.K, x.data(), w.data(), w16.data(), c.data());
          });
        };
        const double t = time_per_call(call, budget);
        // Error against a double reference over a sample of columns (all rows), relative to Σ|x w|,
        // with the operands the kernel read (bf16 W for the bf16 kernels).
        double worst = 0;
        for (int64_t o = 0; o < s.N; o += std::max<int64_t>(1, s.N / 97)) {
          for (int64_t r = 0; r < R; r++) {
            double ref = 0, mag = 0;
            for (int64_t kk = 0; kk < s.K; kk++) {
              const double wv = k.bf16 ? bf16_value(w16[o * s.K + kk]) : w[o * s.K + kk];
              ref += (double)x[r * s.K + kk] * wv;
              mag += std::fabs((double)x[r * s.K + kk] * wv);
            }
            worst = std::max(worst, std::fabs(c[r * s.N + o] - ref) / mag);
          }
        }
        const double flops = 2.0 * R * s.N * s.K, bytes = (double)s.N * s.K * (k.bf16 ? 2 : 4);
        std::printf(
            "{\"matrix\":\"%s\",\"rows\":%lld,\"kernel\":\"%s\",\"threads\":%d,\"us\":%.1f,\"gflops\":%.1f,"
            "\"weight_gbs\":%.1f,\"max_rel_err\":%.2e}\n",
            s.name, (long long)R, k.name, threads, t * 1e6, flops / t * 1e-9, bytes / t * 1e-9, worst);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
