// What the training forward keeps for backward, per layer, for one batch.
#pragma once
#include <cstdint>
#include <vector>

#include "cpu/buffer.h"
#include "cpu/model.h"

namespace temper {

struct LayerActs {
  Buf x_in, ln1, rstd1, q, k, v, att, ao, x_mid, ln2, rstd2, g, u, h;
  LinearSave s[7];  // in Layer::linears order
};

struct Activations {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens, targets, pos;  // [B*T]; targets[b,t] = tokens[b,t+1], -1 where none
  std::vector<LayerActs> layers;
  Buf x_final, lnf, rstdf, logits, lse;
};

}  // namespace temper
