// Many normal draws at once, bit for bit the ones Rng::normal() gives one at a time: the
// initialisation of a model's weights, where drawing 5e8 values one by one through std::log and
// std::cos took longer than anything else in creating a model.
#pragma once
#include <cstdint>
#include <functional>

#include "model/rng.h"

namespace temper {

// Runs fn(i) for i in [0, n) on whatever threads the caller has (the backend's pool).
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t)>& fn)>;

// out[i] = (float)(scale * rng.normal()) for i in [0, n), and rng left where n calls of normal()
// would leave it. Blocks of the stream are drawn in parallel, each from its own start found by
// RngJump; a vectorisable log and cos give each value, and the few whose float could differ from
// the std:: result (within the approximation's error of a rounding boundary) are drawn through
// Rng::box_muller itself, so no value differs.
void fill_normals(Rng& rng, float* out, int64_t n, double scale, const ParallelFor& parallel);

}  // namespace temper
