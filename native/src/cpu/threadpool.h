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
  std::mutex run_mu_, sleep_mu_;
  std::condition_variable wake_;
  // epoch << 32 | closed << 31 | workers inside the current loop. A worker joins a loop only
  // while it is open; the caller closes it when no task is left and waits only for the workers
  // that joined, so a worker the OS has not scheduled never holds the caller up.
  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> next_{0};
  int64_t n_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
};

// The pool behind the addon's free functions (sgemm); setThreads resizes it.
ThreadPool& default_pool();
void set_default_threads(int threads);

}  // namespace temper
