// The rotary table: cos and sin of every position and frequency, made on the host and held in
// backend memory for the rope ops. Angles are formed in double: at position 4096 a float angle
// would already be off in the fourth digit, and the reference computes them in float64.
#include <cmath>

#include "model/model.h"

namespace temper {

namespace {

// The config's rope_scaling per frequency (HF's _compute_llama3_parameters for llama3).
double scaled(double inv, const RopeScaling& s) {
  if (s.kind == RopeScaling::Linear) return inv / s.factor;
  if (s.kind != RopeScaling::Llama3) return inv;
  const double wavelen = 2 * M_PI / inv, low_wavelen = s.original_max_positions / s.low_freq_factor,
               high_wavelen = s.original_max_positions / s.high_freq_factor;
  if (wavelen < high_wavelen) return inv;
  if (wavelen > low_wavelen) return inv / s.factor;
  double smooth = (s.original_max_positions / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  return (1 - smooth) * inv / s.factor + smooth * inv;
}

}  // namespace

// A model's config never changes, so the table only grows (to at least 256 positions).
const RopeTable& Model::rope(int64_t positions) {
  if (positions <= rope_.positions) return rope_;
  const int64_t n = std::max<int64_t>(positions, 256), D = cfg.head_dim, half = D / 2;
  std::vector<float> cos((size_t)(n * half)), sin((size_t)(n * half));
  for (int64_t i = 0; i < half; i++) {
    double inv = scaled(std::pow(cfg.rope_theta, -2.0 * (double)i / (double)D), cfg.rope_scaling);
    for (int64_t p = 0; p < n; p++) {
      cos[p * half + i] = (float)std::cos(p * inv);
      sin[p * half + i] = (float)std::sin(p * inv);
    }
  }
  const size_t bytes = cos.size() * 4;
  rope_.cos = Buffer(be(), bytes, "the rotary table", true);
  rope_.sin = Buffer(be(), bytes, "the rotary table", true);
  be().upload(rope_.cos.get(), cos.data(), bytes);
  be().upload(rope_.sin.get(), sin.data(), bytes);
  rope_.positions = n;
  return rope_;
}

}  // namespace temper
