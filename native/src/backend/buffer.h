// A block of backend memory owned by the model: released to its backend (scratch back into the
// backend's cache) when it goes. Move-only; a Buffer of 0 bytes holds nothing (null).
#pragma once
#include <cstddef>

#include "backend/ops.h"

namespace temper {

class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& be, size_t bytes, const char* what, bool resident = false) : be_(&be), resident_(resident) {
    if (bytes) p_ = be.alloc(bytes, resident, what, &held_);
    bytes_ = bytes;
  }
  Buffer(Buffer&& o) noexcept { *this = static_cast<Buffer&&>(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, p_ = o.p_, bytes_ = o.bytes_, held_ = o.held_, resident_ = o.resident_;
      o.p_ = nullptr, o.bytes_ = o.held_ = 0;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }

  void reset() {
    if (p_) be_->release(p_, held_, resident_);
    p_ = nullptr, bytes_ = held_ = 0;
  }
  void* get() const { return p_; }
  float* f() const { return static_cast<float*>(p_); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0, held_ = 0;
  bool resident_ = false;
};

}  // namespace temper
