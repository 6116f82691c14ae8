// A Model's twin on a CUDA device. The host Model keeps what is not arithmetic: names, shapes,
// loading and writing safetensors, adapter bookkeeping, the optimizer's step count. The twin owns
// the device copies (fp32 master weights, their bf16 compute copies, gradients, AdamW moments)
// and runs forward, logprobs, backward, step and generate on the device. Plain C++ (no CUDA
// headers), so the addon glue builds the same with or without the backend.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cpu/model.h"

namespace temper {

struct CudaOptions {
  int device = 0;
  bool fp32 = false;       // fp32 weights, activations and SIMT products: the checking mode
  int64_t max_slots = 0;   // completions in flight during generate (0: as many as fit, at most 1024)
};

class CudaModel {
 public:
  virtual ~CudaModel() = default;
  // The host model's values (weights, adapters, gradients, AdamW moments) -> device. Call after
  // anything changed them on the host (load, init, adapters added / loaded / merged, import).
  virtual void upload() = 0;
  // Device -> host model, when the device has moved them since the last upload or download.
  virtual void download() = 0;
  virtual void forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits) = 0;
  virtual void logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob,
                        float* entropy, bool keep) = 0;
  virtual void backward(const float* dlogprob) = 0;
  virtual int64_t pending_rows() const = 0;
  virtual void zero_grad() = 0;
  virtual double step(double lr, double b1, double b2, double eps, double wd, double max_norm) = 0;
  virtual std::vector<Completion> generate(const std::vector<std::vector<int32_t>>& prompts,
                                           const SamplingParams& sp) = 0;
  virtual std::string describe() const = 0;  // device name, compute capability, precision
};

// Throws "device 'cuda' requested but ..." when the backend was not compiled in, no device is
// usable, or the model has a shape the kernels do not serve.
std::unique_ptr<CudaModel> make_cuda_model(Model& host, const CudaOptions& options);

}  // namespace temper
