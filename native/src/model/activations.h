// What the training forward keeps for backward, per layer, for one batch: backend memory.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace temper {

// The norms' outputs (ln1, ln2) and the MLP's silu(g) * u are not kept: backward computes them
// again from x_in, x_mid and g, u (elementwise, bit for bit the forward's values).
struct LayerActs {
  Buffer x_in, rstd1, q, k, v, att, ao, x_mid, rstd2, g, u;  // att: attention_saved floats
  Buffer q_raw, k_raw, rstd_q, rstd_k;  // Qwen3: q and k before their per-head RMSNorm, its rstd per head
  LinearSave s[7];                                                        // in Layer::linears order
};

// What a layer's forward writes and does not keep, one set for every layer: tmp [N, C] (each
// projection's output before its residual add), ln [N, C] (ln1, then ln2), h [N, F].
struct LayerScratch {
  float *tmp, *ln, *h;
};

struct Activations {
  int64_t B = 0, T = 0;
  bool recompute = false;  // layers hold only x_in; backward runs each layer's forward again
  Buffer tokens, targets, pos;  // int32 [B*T]; targets[b,t] = tokens[b,t+1], -1 where none
  std::vector<LayerActs> layers;
  Buffer x_final, lnf, rstdf, lse;  // lse: each row's log-sum-exp of its logits
};

}  // namespace temper
