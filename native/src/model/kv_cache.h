// The keys and values of the completions being generated, per layer, in a pool of blocks of
// `block` positions ([blocks, KV, block, D] per layer, in the backend's compute dtype). The
// scheduler (scheduler.h) decides which blocks each completion's positions live in and keeps the
// block table; this class holds the memory, uploads the table when it changes, and copies blocks
// for copy on write. The decode ops find a row's keys through (slot, position) and the table.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/buffer.h"

namespace temper {

class KvCache {
 public:
  // Blocks of be.kv_block() positions; cap: positions a slot's table row addresses (a multiple of it).
  KvCache(Backend& be, int64_t layers, int64_t blocks, int64_t slots, int64_t cap, int64_t kv_heads, int64_t head_dim);
  // Bytes one block of `block` positions takes over all layers.
  static double block_bytes(DType dtype, int64_t block, int64_t layers, int64_t kv_heads, int64_t head_dim);

  // The block table [slots, cap / block], uploaded when it differs from the last one.
  void set_table(const std::vector<int32_t>& table);
  KvLayer layer(int64_t l) const;
  // Positions [0, length) of block `from` copied into block `to` in every layer.
  void copy_block(int32_t from, int32_t to, int64_t length);

 private:
  Backend& be_;
  DType dtype_;
  int64_t block_, blocks_, slots_, cap_, kv_heads_, head_dim_, layers_;
  size_t elem_, layer_bytes_;
  Buffer k_, v_, table_;
  std::vector<int32_t> uploaded_;
};

}  // namespace temper
