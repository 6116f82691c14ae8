// JavaScript <-> engine glue. Every entry checks its arguments and throws a JS Error
// with the offending argument named; nothing here may crash the process on bad input.
#include <napi.h>

#include <string>

#include "backend.h"

namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, Napi::String::New(env, "cpu"));
  if (temper::cuda_compiled()) backends.Set(1u, Napi::String::New(env, "cuda"));
  out.Set("backends", backends);
  out.Set("cudaCompiled", Napi::Boolean::New(env, temper::cuda_compiled()));
  out.Set("blas", Napi::String::New(env, temper::cpu_blas_config()));
  out.Set("blasThreads", Napi::Number::New(env, temper::cpu_blas_threads()));
  return out;
}

Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  int n = temper::cuda_device_count(&why);
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, n));
  if (n == 0) out.Set("reason", Napi::String::New(env, why));
  return out;
}

Napi::Float32Array RequireF32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t expect) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  auto arr = info[i].As<Napi::Float32Array>();
  if (arr.ElementLength() != expect) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " has " + std::to_string(arr.ElementLength()) +
                                                " elements, expected " + std::to_string(expect));
  }
  return arr;
}

int64_t RequireDim(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 1 && v <= (1 << 24)) || v != (double)(int64_t)v) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in [1, 2^24]");
  }
  return (int64_t)v;
}

// sgemm(a, b, m, k, n) -> Float32Array c[m*n]; a small, checked door to the CPU BLAS.
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  int64_t m = RequireDim(info, 2, "m"), k = RequireDim(info, 3, "k"), n = RequireDim(info, 4, "n");
  auto a = RequireF32(info, 0, "a", (size_t)(m * k));
  auto b = RequireF32(info, 1, "b", (size_t)(k * n));
  auto c = Napi::Float32Array::New(info.Env(), (size_t)(m * n));
  temper::cpu_sgemm(a.Data(), b.Data(), c.Data(), m, k, n);
  return c;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int64_t t = RequireDim(info, 0, "threads");
  temper::cpu_set_blas_threads((int)t);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  return exports;
}

}  // namespace

NODE_API_MODULE(temper_engine, Init)
