// Argument checks and the async job shared by the addon's entry points. A check that fails
// throws a JS TypeError/RangeError naming the argument; engine errors (std::exception) thrown
// on a worker thread reject the call's Promise with an Error carrying the message.
#pragma once
#include <napi.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace temper::js {

[[noreturn]] inline void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void range_error(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

inline double number(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsNumber()) type_error(env, name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) range_error(env, name + " must be finite");
  return d;
}

inline int64_t integer(Napi::Env env, Napi::Value v, const std::string& name, int64_t lo, int64_t hi) {
  double d = number(env, v, name);
  if (d != std::floor(d) || d < (double)lo || d > (double)hi)
    range_error(env, name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return (int64_t)d;
}

inline bool boolean(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsBoolean()) type_error(env, name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline std::string string(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsString()) type_error(env, name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

template <typename T, napi_typedarray_type kind>
std::vector<T> typed(Napi::Env env, Napi::Value v, const std::string& name, const char* type, int64_t expect) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind) type_error(env, name + " must be a " + type);
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (expect >= 0 && (int64_t)a.ElementLength() != expect)
    range_error(env, name + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(expect));
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

inline std::vector<int32_t> int32s(Napi::Env env, Napi::Value v, const std::string& name, int64_t expect = -1) {
  return typed<int32_t, napi_int32_array>(env, v, name, "Int32Array", expect);
}

inline std::vector<float> float32s(Napi::Env env, Napi::Value v, const std::string& name, int64_t expect = -1) {
  auto out = typed<float, napi_float32_array>(env, v, name, "Float32Array", expect);
  for (size_t i = 0; i < out.size(); i++)
    if (!std::isfinite(out[i])) range_error(env, name + "[" + std::to_string(i) + "] is not a finite number");
  return out;
}

inline Napi::Float32Array to_js(Napi::Env env, const std::vector<float>& v) {
  auto a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

inline Napi::Int32Array to_js(Napi::Env env, const std::vector<int32_t>& v) {
  auto a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// Runs work() on a libuv worker thread and settles a Promise: done(env) builds the value on the
// JS thread. `self` (the model's JS object) is kept alive until then.
class Job : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise start(Napi::Env env, Napi::Object self, Work work, Done done = nullptr) {
    auto* job = new Job(env, self, std::move(work), std::move(done));
    Napi::Promise p = job->deferred_.Promise();
    job->Queue();
    return p;
  }

 private:
  Job(Napi::Env env, Napi::Object self, Work work, Done done)
      : Napi::AsyncWorker(env, "temper"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {
    if (!self.IsEmpty()) self_ = Napi::Persistent(self);
  }
  void Execute() override {
    try {
      work_();
    } catch (const std::bad_alloc&) {
      SetError("out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;
  Work work_;
  Done done_;
};

}  // namespace temper::js
