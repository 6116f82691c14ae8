#include "cpu/threadpool.h"

#include <immintrin.h>

#include <memory>

namespace temper {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; i++) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(sleep_mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::drain() {
  for (int64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n_;) (*fn_)(i);
}

void ThreadPool::run(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; i++) fn(i);
    return;
  }
  std::lock_guard<std::mutex> g(run_mu_);
  fn_ = &fn;
  n_ = n;
  next_.store(0, std::memory_order_relaxed);
  pending_.store((int)workers_.size(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(sleep_mu_);
    epoch_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain();
  while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
}

void ThreadPool::chunks(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  int64_t parts = std::min<int64_t>(size(), n);
  run(parts, [&](int64_t p) { fn(n * p / parts, n * (p + 1) / parts, (int)p); });
}

// A forward pass issues thousands of short parallel loops, so a worker spins for a while
// (a fraction of a millisecond) before it sleeps; waking from a condition variable each
// time would cost more than many of the loops themselves.
void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (epoch_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
      if (++spins < 1 << 14) {
        _mm_pause();
        continue;
      }
      std::unique_lock<std::mutex> l(sleep_mu_);
      wake_.wait(l, [&] { return epoch_.load(std::memory_order_acquire) != seen || stop_.load(); });
    }
    if (stop_.load()) return;
    seen = epoch_.load(std::memory_order_acquire);
    drain();
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

namespace {
std::mutex default_mu;
std::unique_ptr<ThreadPool> default_instance;
}  // namespace

ThreadPool& default_pool() {
  std::lock_guard<std::mutex> l(default_mu);
  if (!default_instance) default_instance = std::make_unique<ThreadPool>((int)std::max(1u, std::thread::hardware_concurrency()));
  return *default_instance;
}

void set_default_threads(int threads) {
  std::lock_guard<std::mutex> l(default_mu);
  default_instance = std::make_unique<ThreadPool>(threads);
}

}  // namespace temper
