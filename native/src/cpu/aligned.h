// A growable float buffer whose start is 64-byte aligned, for per-thread scratch that vector
// kernels read: a std::vector's storage is only 16-byte aligned, and 64-byte loads from it split
// across cache lines (measured: the decode products at 16 rows ran at ~0.55x their rate when
// their activation rows came from one).
#pragma once
#include <cstdlib>
#include <new>

namespace temper {

class AlignedFloats {
 public:
  AlignedFloats() = default;
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  ~AlignedFloats() { std::free(p_); }

  // At least n floats; the contents are not kept when it grows.
  float* get(size_t n) {
    if (n > cap_) {
      std::free(p_);
      p_ = nullptr, cap_ = 0;
      p_ = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
      if (!p_) throw std::bad_alloc();
      cap_ = n;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace temper
