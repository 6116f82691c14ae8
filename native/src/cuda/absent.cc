// make_cuda_backend for builds without the CUDA backend (TEMPER_CUDA=off or no nvcc).
#ifndef TEMPER_CUDA
#include <stdexcept>

#include "backend/backends.h"

namespace temper {

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions&) {
  throw std::runtime_error(
      "device 'cuda' requested but this build of the engine has no CUDA backend (it was built without nvcc or "
      "with TEMPER_CUDA=off; rebuild with the CUDA toolkit installed: TEMPER_CUDA=on node native/scripts/build.js)");
}

}  // namespace temper
#endif
