#include "cpu/threadpool.h"

#include <sched.h>

#include <memory>

namespace temper {

namespace {

constexpr uint64_t kClosed = uint64_t(1) << 31, kActive = kClosed - 1;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Busy-waiting is right while the other threads are running, wrong when the cores are shared
// with other work: pause a little, then yield the core, then (workers only) sleep.
struct Backoff {
  int n = 0;
  void wait() {
    if (++n < 256) cpu_relax();
    else sched_yield();
  }
};

}  // namespace

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
  uint64_t epoch = (state_.load(std::memory_order_relaxed) >> 32) + 1;
  state_.store(epoch << 32, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> l(sleep_mu_);
    wake_.notify_all();
  }
  drain();
  state_.fetch_or(kClosed, std::memory_order_acq_rel);
  Backoff b;
  while (state_.load(std::memory_order_acquire) & kActive) b.wait();
}

void ThreadPool::chunks(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  int64_t parts = std::min<int64_t>(size(), n);
  run(parts, [&](int64_t p) { fn(n * p / parts, n * (p + 1) / parts, (int)p); });
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    Backoff b;
    for (int spins = 0; (state_.load(std::memory_order_acquire) >> 32) == seen; spins++) {
      if (stop_.load(std::memory_order_relaxed)) return;
      if (spins < 4096) {
        b.wait();
        continue;
      }
      std::unique_lock<std::mutex> l(sleep_mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(l, [&] { return (state_.load(std::memory_order_seq_cst) >> 32) != seen || stop_.load(); });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      spins = 0;
    }
    uint64_t s = state_.load(std::memory_order_acquire);
    seen = s >> 32;
    bool joined = false;
    while (!(s & kClosed) && (s >> 32) == seen) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    drain();
    state_.fetch_sub(1, std::memory_order_release);
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
