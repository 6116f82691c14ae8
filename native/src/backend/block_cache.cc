#include "backend/block_cache.h"

namespace temper {

BlockCache::BlockCache(std::function<void*(size_t)> fresh, std::function<void(void*)> drop, size_t limit)
    : fresh_(std::move(fresh)), drop_(std::move(drop)), limit_(limit) {}

BlockCache::~BlockCache() { trim(); }

void* BlockCache::take(size_t bytes, size_t* held) {
  {
    std::lock_guard<std::mutex> l(mu_);
    size_t best = blocks_.size();
    for (size_t i = 0; i < blocks_.size(); i++)
      if (blocks_[i].bytes >= bytes && blocks_[i].bytes <= 2 * bytes + 4096 &&
          (best == blocks_.size() || blocks_[i].bytes < blocks_[best].bytes))
        best = i;
    if (best < blocks_.size()) {
      Block b = blocks_[best];
      blocks_.erase(blocks_.begin() + (ptrdiff_t)best);
      cached_ -= b.bytes;
      *held = b.bytes;
      return b.p;
    }
  }
  // Outside the lock: a fresh allocation may trim this cache to make room.
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* p = fresh_(rounded);
  *held = rounded;
  return p;
}

void BlockCache::give(void* p, size_t held) {
  std::lock_guard<std::mutex> l(mu_);
  blocks_.push_back({p, held});
  cached_ += held;
  while (cached_ > limit_) {
    cached_ -= blocks_.front().bytes;
    drop_(blocks_.front().p);
    blocks_.erase(blocks_.begin());
  }
}

size_t BlockCache::trim() {
  std::lock_guard<std::mutex> l(mu_);
  size_t freed = cached_;
  for (auto& b : blocks_) drop_(b.p);
  blocks_.clear();
  cached_ = 0;
  return freed;
}

size_t BlockCache::cached() const {
  std::lock_guard<std::mutex> l(mu_);
  return cached_;
}

}  // namespace temper
