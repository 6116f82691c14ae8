// Released memory blocks kept for the next request of a similar size. On the VMs this runs on,
// touching freshly mapped pages cost more than the arithmetic done in them (a training step's
// ~1 GB of activations took longer to fault in than to compute), and a device allocation
// synchronises the device; so a backend's scratch memory goes back to a cache when released and
// the next call of the same shape takes it again. Both backends keep their scratch in one.
#pragma once
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

namespace temper {

class BlockCache {
 public:
  // fresh(bytes) allocates (or throws); drop(p) frees. Past `limit` cached bytes the oldest
  // blocks are freed.
  BlockCache(std::function<void*(size_t)> fresh, std::function<void(void*)> drop, size_t limit);
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A block of at least `bytes` (its capacity in *held): the smallest cached one that fits
  // without wasting more than half of it, else a fresh one.
  void* take(size_t bytes, size_t* held);
  void give(void* p, size_t held);
  // Frees every cached block; returns the bytes given back.
  size_t trim();
  size_t cached() const;

 private:
  struct Block {
    void* p;
    size_t bytes;
  };
  std::function<void*(size_t)> fresh_;
  std::function<void(void*)> drop_;
  size_t limit_;
  mutable std::mutex mu_;
  std::vector<Block> blocks_;  // oldest first
  size_t cached_ = 0;
};

}  // namespace temper
