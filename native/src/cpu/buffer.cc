#include "cpu/buffer.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace temper {

namespace {

// Cached blocks, oldest first. A request takes the smallest block that fits without wasting
// more than half of it; past kLimit bytes the oldest blocks are freed.
constexpr size_t kLimit = size_t(4) << 30;

struct Block {
  float* p;
  size_t cap;
};

std::mutex mu;
std::vector<Block> cache;
size_t cached_bytes = 0;

float* take(size_t n, size_t* cap) {
  {
    std::lock_guard<std::mutex> l(mu);
    size_t best = cache.size();
    for (size_t i = 0; i < cache.size(); i++)
      if (cache[i].cap >= n && cache[i].cap <= 2 * n + 1024 && (best == cache.size() || cache[i].cap < cache[best].cap))
        best = i;
    if (best < cache.size()) {
      Block b = cache[best];
      cache.erase(cache.begin() + (ptrdiff_t)best);
      cached_bytes -= b.cap * sizeof(float);
      *cap = b.cap;
      return b.p;
    }
  }
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  *cap = bytes / sizeof(float);
  return (float*)p;
}

void give(float* p, size_t cap) {
  std::lock_guard<std::mutex> l(mu);
  cache.push_back({p, cap});
  cached_bytes += cap * sizeof(float);
  while (cached_bytes > kLimit) {
    cached_bytes -= cache.front().cap * sizeof(float);
    std::free(cache.front().p);
    cache.erase(cache.begin());
  }
}

}  // namespace

Buf& Buf::operator=(Buf&& o) noexcept {
  if (this != &o) {
    release();
    p_ = o.p_, n_ = o.n_, cap_ = o.cap_;
    o.p_ = nullptr, o.n_ = o.cap_ = 0;
  }
  return *this;
}

void Buf::resize(size_t n) {
  if (n <= cap_) {
    n_ = n;
    return;
  }
  release();
  if (n == 0) return;
  p_ = take(n, &cap_);
  n_ = n;
}

void Buf::zero() {
  if (n_) std::memset(p_, 0, n_ * sizeof(float));
}

void Buf::release() {
  if (p_) give(p_, cap_);
  p_ = nullptr;
  n_ = cap_ = 0;
}

size_t trim_buffer_cache() {
  std::lock_guard<std::mutex> l(mu);
  size_t freed = cached_bytes;
  for (auto& b : cache) std::free(b.p);
  cache.clear();
  cached_bytes = 0;
  return freed;
}

}  // namespace temper
