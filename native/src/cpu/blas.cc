#include <cblas.h>

#include "backend/backends.h"
#include "cpu/kernels.h"

namespace temper {

// Sliced over the default pool like every engine GEMM, with OpenBLAS single-threaded inside.
void cpu_sgemm(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
  openblas_set_num_threads(1);
  gemm(default_pool(), false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}

void cpu_set_threads(int threads) { set_default_threads(threads); }

std::string cpu_blas_config() { return openblas_get_config(); }
int cpu_blas_threads() { return openblas_get_num_threads(); }

#ifndef TEMPER_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count(std::string* why_none) {
  if (why_none) *why_none = "built without the CUDA backend";
  return 0;
}
#endif

}  // namespace temper
