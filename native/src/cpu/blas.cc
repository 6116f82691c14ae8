#include <cblas.h>

#include "backend.h"

namespace temper {

void cpu_sgemm(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, 1.0f, a,
              (blasint)k, b, (blasint)n, 0.0f, c, (blasint)n);
}

std::string cpu_blas_config() { return openblas_get_config(); }
int cpu_blas_threads() { return openblas_get_num_threads(); }
void cpu_set_blas_threads(int threads) { openblas_set_num_threads(threads); }

#ifndef TEMPER_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count(std::string* why_none) {
  if (why_none) *why_none = "built without the CUDA backend";
  return 0;
}
#endif

}  // namespace temper
