#include "model/kv_cache.h"

#include <stdexcept>

namespace temper {

KvCache::KvCache(Backend& be, int64_t layers, int64_t blocks, int64_t slots, int64_t cap, int64_t kv_heads,
                 int64_t head_dim)
    : be_(be), dtype_(be.kv_dtype()), block_(be.kv_block()), blocks_(blocks), slots_(slots), cap_(cap), kv_heads_(kv_heads),
      head_dim_(head_dim), layers_(layers) {
  if (cap % block_ != 0) throw std::runtime_error("KvCache: cap must be a multiple of the block size");
  elem_ = dtype_ == DType::BF16 ? 2 : 4;
  layer_bytes_ = (size_t)(blocks * kv_heads * block_ * head_dim) * elem_;
  k_ = Buffer(be, layer_bytes_ * layers, "the KV cache");
  v_ = Buffer(be, layer_bytes_ * layers, "the KV cache");
  table_ = Buffer(be, (size_t)(slots * (cap / block_)) * 4, "the KV cache's block table");
}

double KvCache::block_bytes(DType dtype, int64_t block, int64_t layers, int64_t kv_heads, int64_t head_dim) {
  return 2.0 * layers * kv_heads * block * head_dim * (dtype == DType::BF16 ? 2 : 4);
}

void KvCache::set_table(const std::vector<int32_t>& table) {
  if ((int64_t)table.size() != slots_ * (cap_ / block_)) throw std::runtime_error("KvCache: block table of the wrong size");
  if (table == uploaded_) return;
  be_.upload(table_.get(), table.data(), table.size() * 4);
  uploaded_ = table;
}

KvLayer KvCache::layer(int64_t l) const {
  return {k_.as<char>() + l * layer_bytes_, v_.as<char>() + l * layer_bytes_, dtype_, slots_, cap_, block_,
          table_.as<int32_t>()};
}

// Within a block each kv head's positions are contiguous, heads block_ positions apart.
void KvCache::copy_block(int32_t from, int32_t to, int64_t length) {
  const size_t row = (size_t)(length * head_dim_) * elem_, pitch = (size_t)(block_ * head_dim_) * elem_,
               block = pitch * kv_heads_;
  for (int64_t l = 0; l < layers_; l++)
    for (const Buffer* b : {&k_, &v_}) {
      char* base = b->as<char>() + l * layer_bytes_;
      be_.copy_rows(base + to * block, pitch, base + from * block, pitch, row, kv_heads_);
    }
}

}  // namespace temper
