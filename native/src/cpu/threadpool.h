// The engine's own threads. OpenBLAS runs single-threaded inside them (see matmul.cc), so
// one pool decides how many cores a model uses and nothing is oversubscribed.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace temper {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return (int)workers_.size() + 1; }
  // fn(i) for every i in [0, n), handed out dynamically; the caller works too.
  void run(int64_t n, const std::function<void(int64_t)>& fn);
  // [0, n) cut into one contiguous range per thread: fn(begin, end, part).
  void chunks(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex sleep_mu_;
  std::condition_variable wake_;
  std::mutex run_mu_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<int64_t> next_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  int64_t n_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
};

// The pool behind the addon's free functions (sgemm); setThreads resizes it.
ThreadPool& default_pool();
void set_default_threads(int threads);

}  // namespace temper
