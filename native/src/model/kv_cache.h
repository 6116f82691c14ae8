// The keys and values of the completions being generated, per layer, in fixed slots of `cap`
// positions each ([slots, KV, cap, D] per layer, in the backend's compute dtype). A completion
// holds one slot while it runs (the scheduler hands them out) and writes position p of it at
// step p; the decode ops find a row's keys through (slot, position). Paging (blocks of positions
// handed out as completions grow, instead of a worst case per slot) belongs here: the generation
// loop asks only for layer views and prefix copies.
#pragma once
#include <cstdint>

#include "backend/buffer.h"

namespace temper {

class KvCache {
 public:
  KvCache(Backend& be, int64_t layers, int64_t slots, int64_t cap, int64_t kv_heads, int64_t head_dim);
  // Bytes one slot takes over all layers.
  static double slot_bytes(DType dtype, int64_t layers, int64_t cap, int64_t kv_heads, int64_t head_dim);

  KvLayer layer(int64_t l) const;
  // Positions [0, length) of slot `from`, copied into slot `to` in every layer: a prompt's
  // prefill shared by its other samples.
  void copy_prefix(int32_t from, int32_t to, int64_t length);

 private:
  Backend& be_;
  DType dtype_;
  int64_t slots_, cap_, kv_heads_, head_dim_, layers_;
  size_t elem_, layer_bytes_;
  Buffer k_, v_;
};

}  // namespace temper
