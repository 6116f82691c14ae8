// Device discovery: whether the CUDA backend is compiled in and which devices it sees.
#include <cuda_runtime.h>

#include "backend/backends.h"

namespace temper {

bool cuda_compiled() { return true; }

int cuda_device_count(std::string* why_none) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why_none) *why_none = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  if (n == 0 && why_none) *why_none = "no CUDA device";
  return n;
}

}  // namespace temper
