// What the backends offer to the addon glue. Each backend lives in its own folder
// (src/cpu, src/cuda); addon.cc only translates between JavaScript and these calls.
#pragma once
#include <cstdint>
#include <string>

namespace temper {

// C[m,n] = A[m,k] · B[k,n], row-major fp32, through the CPU's BLAS.
void cpu_sgemm(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n);
std::string cpu_blas_config();
int cpu_blas_threads();

// Whether the CUDA backend was compiled in, and how many devices the runtime sees
// (0 when compiled without it or when no driver / device is present).
bool cuda_compiled();
int cuda_device_count(std::string* why_none);

}  // namespace temper
