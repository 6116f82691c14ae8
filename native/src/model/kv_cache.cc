#include "model/kv_cache.h"

namespace temper {

KvCache::KvCache(Backend& be, int64_t layers, int64_t slots, int64_t cap, int64_t kv_heads, int64_t head_dim)
    : be_(be), dtype_(be.kv_dtype()), slots_(slots), cap_(cap), kv_heads_(kv_heads), head_dim_(head_dim),
      layers_(layers) {
  elem_ = dtype_ == DType::BF16 ? 2 : 4;
  layer_bytes_ = (size_t)(slots * kv_heads * cap * head_dim) * elem_;
  k_ = Buffer(be, layer_bytes_ * layers, "the KV cache");
  v_ = Buffer(be, layer_bytes_ * layers, "the KV cache");
}

double KvCache::slot_bytes(DType dtype, int64_t layers, int64_t cap, int64_t kv_heads, int64_t head_dim) {
  return 2.0 * layers * kv_heads * cap * head_dim * (dtype == DType::BF16 ? 2 : 4);
}

KvLayer KvCache::layer(int64_t l) const {
  return {k_.as<char>() + l * layer_bytes_, v_.as<char>() + l * layer_bytes_, dtype_, slots_, cap_};
}

// A slot's heads are `pitch` apart; each head's first `length` positions are contiguous.
void KvCache::copy_prefix(int32_t from, int32_t to, int64_t length) {
  const size_t row = (size_t)(length * head_dim_) * elem_, pitch = (size_t)(cap_ * head_dim_) * elem_,
               slot = pitch * kv_heads_;
  for (int64_t l = 0; l < layers_; l++)
    for (const Buffer* b : {&k_, &v_}) {
      char* base = b->as<char>() + l * layer_bytes_;
      be_.copy_rows(base + to * slot, pitch, base + from * slot, pitch, row, kv_heads_);
    }
}

}  // namespace temper
