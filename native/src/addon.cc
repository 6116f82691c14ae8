// JavaScript <-> engine glue. Every entry checks its arguments and throws a JS Error
// with the offending argument named; nothing here may crash the process on bad input.
#include <napi.h>

#include <string>

#include "backend/backends.h"
#include "io/safetensors.h"

namespace temper {
Napi::Function define_native_model(Napi::Env env);
}

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

// The thread count of the pool behind sgemm (models take their own in their constructor).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int64_t t = RequireDim(info, 0, "threads");
  if (t > 256) throw Napi::RangeError::New(info.Env(), "threads must be at most 256");
  temper::cpu_set_threads((int)t);
  return info.Env().Undefined();
}

// Hands the engine's cached scratch memory back to the system; returns the bytes freed.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)temper::trim_host_cache());
}

// readSafetensors(bytes) -> { metadata, tensors: { name: { dtype, shape, data: Float64Array } } }.
// The checked reader the engine loads with, opened to tests and tools; any defect is an Error.
Napi::Value ReadSafetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
  auto u = info[0].As<Napi::Uint8Array>();
  temper::SafetensorsFile f;
  f.what = "safetensors";
  f.bytes.assign(u.Data(), u.Data() + u.ElementLength());
  try {
    temper::parse_safetensors(f);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object out = Napi::Object::New(env), tensors = Napi::Object::New(env), meta = Napi::Object::New(env);
  for (auto& [k, v] : f.metadata) meta.Set(k, v);
  for (auto& t : f.tensors) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("dtype", temper::dtype_name(t.dtype));
    Napi::Array shape = Napi::Array::New(env, t.shape.size());
    for (size_t i = 0; i < t.shape.size(); i++) shape.Set((uint32_t)i, Napi::Number::New(env, (double)t.shape[i]));
    o.Set("shape", shape);
    std::vector<double> d = temper::to_f64(t);
    auto arr = Napi::Float64Array::New(env, d.size());
    std::copy(d.begin(), d.end(), arr.Data());
    o.Set("data", arr);
    tensors.Set(t.name, o);
  }
  out.Set("metadata", meta);
  out.Set("tensors", tensors);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("readSafetensors", Napi::Function::New(env, ReadSafetensors));
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory));
  exports.Set("NativeModel", temper::define_native_model(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(temper_engine, Init)
