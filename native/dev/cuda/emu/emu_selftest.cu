// Checks of the emulator itself, built by the same transpile step as the backend: shuffles and
// block reductions give the right values, a deadlock and a full-mask shuffle in a partial warp
// are reported rather than hung on or passed, dynamic shared memory starts as NaN and above 48 KB
// needs cudaFuncSetAttribute, and a missing
// barrier that the forward thread order hides shows in the reverse order (EMU_REVERSE).
#include <cmath>
#include <cstdio>
#include <string>

#include "cuda/common.cuh"

using namespace temper::cuda;

namespace {

__global__ void sums_k(float* out) {
  __shared__ float scratch[32];
  const float v = (float)threadIdx.x;
  const float w = warp_sum(v), b = block_sum(v, scratch);
  if (threadIdx.x % 32 == 0) out[threadIdx.x / 32] = w;
  if (threadIdx.x == 0) out[32] = b;
  out[33 + threadIdx.x] = __shfl_sync(0xffffffffu, v, 31 - (int)(threadIdx.x & 31));
}

// Lanes 0-15 of warp 1 wait for their warp at a shuffle; everyone else waits at the block barrier.
__global__ void divergent_k() {
  if (threadIdx.x >= 32 && threadIdx.x < 48) warp_sum(1.0f);
  else __syncthreads();
}

__global__ void partial_warp_k(float* out) {
  if ((threadIdx.x & 31) >= 16) return;
  out[threadIdx.x] = warp_sum(1.0f);
}

__global__ void unsynced_k(float* out) {
  __shared__ float x;
  if (threadIdx.x == 0) x = (float)blockIdx.x + 1;
  if (threadIdx.x == blockDim.x - 1) out[blockIdx.x] = x;  // no __syncthreads between: a race
}

__global__ void smem_k(float* out) {
  extern __shared__ float dyn[];
  if (threadIdx.x == 0) out[0] = dyn[5];
}

int failures = 0;
void check(const char* what, bool ok) {
  std::printf("  %-72s %s\n", what, ok ? "ok" : "FAIL");
  if (!ok) failures++;
}
// Runs f, which should throw an emulator error mentioning `needle`.
template <typename F>
void expect_error(const char* what, const char* needle, F f) {
  std::string msg;
  try {
    f();
  } catch (const std::exception& e) {
    msg = e.what();
  }
  check(what, msg.find(needle) != std::string::npos);
  if (msg.find(needle) == std::string::npos) std::printf("    got: %s\n", msg.empty() ? "(no error)" : msg.c_str());
}

}  // namespace

int main() {
  std::printf("emulator self-test\n");
  float* d;
  cudaMalloc(&d, 4096 * sizeof(float));
  sums_k<<<1, 1024>>>(d);
  bool ok = true;
  for (int w = 0; w < 32; w++) ok &= d[w] == (float)(32 * 32 * w + 31 * 16);  // Σ of 32w..32w+31
  check("warp_sum over each warp of 1024 threads", ok);
  check("block_sum over 1024 threads", d[32] == 1023.0f * 1024 / 2);
  ok = true;
  for (int t = 0; t < 1024; t++) ok &= d[33 + t] == (float)(t / 32 * 32 + 31 - t % 32);
  check("__shfl_sync from lane 31 - lane", ok);
  expect_error("divergent barriers are reported as a deadlock", "deadlocked", [] { divergent_k<<<1, 64>>>(); });
  expect_error("a full-mask shuffle in a warp with exited lanes is reported", "exited", [&] { partial_warp_k<<<1, 64>>>(d); });
  smem_k<<<1, 32, 64>>>(d);
  check("dynamic shared memory starts as NaN", std::isnan(d[0]));
  expect_error("above 48 KB of dynamic shared memory without the attribute is refused", "48 KB",
               [&] { smem_k<<<1, 32, 50 * 1024>>>(d); });
  cudaFuncSetAttribute(smem_k, cudaFuncAttributeMaxDynamicSharedMemorySize, 50 * 1024);
  bool threw = false;
  try {
    smem_k<<<1, 32, 50 * 1024>>>(d);
  } catch (const std::exception&) {
    threw = true;
  }
  check("... and allowed with it", !threw);
  const bool was = emu::reverse_order;
  const char* seed = emu::shuffle_seed;
  emu::reverse_order = false, emu::shuffle_seed = nullptr;
  unsynced_k<<<3, 128>>>(d);
  check("a missing barrier: the forward order happens to read what thread 0 wrote", d[0] == 1 && d[1] == 2 && d[2] == 3);
  emu::reverse_order = true;
  unsynced_k<<<3, 128>>>(d);
  check("... and the reverse order reads the value left from before", d[0] != 1 && d[1] == 1 && d[2] == 2);
  emu::reverse_order = was, emu::shuffle_seed = seed;
  cudaFree(d);
  std::printf(failures ? "emulator self-test: %d FAILED\n" : "emulator self-test: all passed\n", failures);
  return failures ? 1 : 0;
}
