// What the training forward keeps for backward, per layer, for one batch: backend memory.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace temper {

struct LayerActs {
  Buffer x_in, ln1, rstd1, q, k, v, att, ao, x_mid, ln2, rstd2, g, u, h;  // att: attention_saved floats
  Buffer q_raw, k_raw, rstd_q, rstd_k;  // Qwen3: q and k before their per-head RMSNorm, its rstd per head
  LinearSave s[7];                                                        // in Layer::linears order
};

struct Activations {
  int64_t B = 0, T = 0;
  bool recompute = false;  // layers hold only x_in; backward runs each layer's forward again
  Buffer tokens, targets, pos;  // int32 [B*T]; targets[b,t] = tokens[b,t+1], -1 where none
  std::vector<LayerActs> layers;
  Buffer x_final, lnf, rstdf, lse;  // lse: each row's log-sum-exp of its logits
};

}  // namespace temper
