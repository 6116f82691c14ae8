// Shared by the kernel harnesses in this folder (llm.c's dev/cuda layout): each harness holds a
// CPU reference, the kernel versions, a check of every version against the reference on fresh
// random inputs (outputs poisoned first, so an unwritten element fails), and a timing table.
// Build and run on a GPU machine: `make` here, then ./gemm, ./attention, ./fused.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#define DEV_CHECK(call)                                                                      \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                          \
    }                                                                                        \
  } while (0)

inline std::vector<float> random_vec(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

template <typename T>
T* to_device(const std::vector<T>& h) {
  T* d = nullptr;
  DEV_CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
  DEV_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

template <typename T>
std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> h(n);
  DEV_CHECK(cudaDeviceSynchronize());
  DEV_CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// NaN in every float: an element the kernel never wrote fails the check.
inline void poison(float* d, size_t n) { DEV_CHECK(cudaMemset(d, 0xFF, n * sizeof(float))); }

// ‖out − ref‖ / ‖ref‖; NaN anywhere gives NaN (and fails every threshold).
inline double rel_err(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    double d = (double)out[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

inline bool report(const char* what, double err, double tol) {
  bool ok = err < tol;  // false for NaN
  std::printf("  %-46s rel err %.3e  (tol %.0e)  %s\n", what, err, tol, ok ? "ok" : "FAIL");
  return ok;
}

// Median milliseconds of `reps` runs after `warmup`, timed with events.
template <typename F>
float time_ms(F fn, int reps = 20, int warmup = 3) {
  for (int i = 0; i < warmup; i++) fn();
  DEV_CHECK(cudaDeviceSynchronize());
  DEV_CHECK(cudaGetLastError());
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> t;
  for (int i = 0; i < reps; i++) {
    cudaEventRecord(a);
    fn();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  DEV_CHECK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

inline int device_sms() {
  cudaDeviceProp p;
  DEV_CHECK(cudaGetDeviceProperties(&p, 0));
  std::printf("device: %s, %d SMs, sm_%d%d, %.0f MB L2\n", p.name, p.multiProcessorCount, p.major, p.minor,
              p.l2CacheSize / 1e6);
  return p.multiProcessorCount;
}
