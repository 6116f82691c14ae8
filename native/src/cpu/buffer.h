// Scratch and activation memory. On the VMs this runs on, touching freshly mapped pages costs
// more than the arithmetic done in them (a training step's ~1 GB of activations took longer to
// fault in than to compute), so buffers go back to a process-wide cache when released and the
// next call of the same shape takes them again, already resident. The model holds no buffer
// between calls: activations are released after backward, and trim_buffer_cache() hands the
// cached memory back to the system.
#pragma once
#include <cstddef>
#include <cstdint>

namespace temper {

class Buf {
 public:
  Buf() = default;
  explicit Buf(size_t n) { resize(n); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_) { o.p_ = nullptr, o.n_ = o.cap_ = 0; }
  Buf& operator=(Buf&& o) noexcept;
  ~Buf() { release(); }

  // Contents are unspecified after a resize (no zero fill: callers write before they read).
  void resize(size_t n);
  void zero();
  void release();
  float* data() { return p_; }
  const float* data() const { return p_; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return p_[i]; }
  const float& operator[](size_t i) const { return p_[i]; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

// Frees every cached buffer; returns the bytes given back.
size_t trim_buffer_cache();

}  // namespace temper
