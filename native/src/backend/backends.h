// The two backends behind ops.h, and what the addon asks about them without a model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "backend/ops.h"

namespace temper {

// The CPU backend on its own pool of `threads` threads (OpenBLAS single-threaded inside them).
// bf16: base matrices get bf16 copies that the products read (widened inside each product).
// batch_invariant: every op's result for a row or sequence is the same bits whatever else is in
// the batch (cpu/matmul_invariant.cc); fp32 only.
std::unique_ptr<Backend> make_cpu_backend(int threads, bool bf16 = false, bool batch_invariant = false);

struct CudaOptions {
  int device = 0;
  bool fp32 = false;      // fp32 weights, caches and SIMT products: the checking mode
  int64_t max_slots = 0;  // completions in flight during generate (0: as many as fit, at most 1024)
};
// Throws "device 'cuda' requested but ..." when the backend was not compiled in or no usable
// device is present.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);

// C[m,n] = A[m,k] · B[k,n], row-major fp32, through the CPU's BLAS on the default pool.
void cpu_sgemm(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n);
void cpu_set_threads(int threads);  // of that default pool
std::string cpu_blas_config();
int cpu_blas_threads();
// The CPU backend's process-wide cache of scratch blocks, handed back to the system.
size_t trim_host_cache();

// Whether the CUDA backend was compiled in, and how many devices the runtime sees
// (0 when compiled without it or when no driver / device is present).
bool cuda_compiled();
int cuda_device_count(std::string* why_none);

}  // namespace temper
