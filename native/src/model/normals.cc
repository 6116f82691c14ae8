// See normals.h. The approximations: log by the atanh series on a mantissa in [sqrt(1/2),
// sqrt(2)), cos by a reduction to [-pi/4, pi/4] and the Taylor series of sin and cos there, all
// branch-free so the compiler vectorises the loop. Their error (about 1e-16) is far below the
// guard band that sends a value to the exact path.
#include "model/normals.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

namespace temper {

namespace {

constexpr int kLog2Block = 15;                 // values per parallel block: 32768
constexpr int64_t kBlock = int64_t(1) << kLog2Block;
constexpr int64_t kTile = 512;                 // values per vectorised pass inside a block
constexpr double kTwoPi = 6.283185307179586;   // Rng::box_muller's constant, the same bits

// log(x) for x in [2^-53, 1]: x = m 2^k with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
// s = (m - 1) / (m + 1), |s| < 0.172, so the series to s^23 is exact in double.
inline double log_approx(double x) {
  uint64_t ix;
  std::memcpy(&ix, &x, 8);
  const uint64_t tmp = ix - 0x3fe6a09e667f3bcdull;  // the bits of sqrt(1/2)
  const int64_t k = (int64_t)tmp >> 52;
  const uint64_t im = ix - ((uint64_t)k << 52);
  double m;
  std::memcpy(&m, &im, 8);
  const double f = m - 1.0, s = f / (2.0 + f), z = s * s;
  double p = 1.0 / 23;
  p = p * z + 1.0 / 21;
  p = p * z + 1.0 / 19;
  p = p * z + 1.0 / 17;
  p = p * z + 1.0 / 15;
  p = p * z + 1.0 / 13;
  p = p * z + 1.0 / 11;
  p = p * z + 1.0 / 9;
  p = p * z + 1.0 / 7;
  p = p * z + 1.0 / 5;
  p = p * z + 1.0 / 3;
  const double kd = (double)k;
  return kd * 6.93147180369123816490e-01 + (kd * 1.90821492927058770002e-10 + (2.0 * s + 2.0 * s * z * p));
}

// cos(t) for t in [0, 2 pi): t = q pi/2 + r with |r| <= pi/4 (q in 0..4), pi/2 in two parts so
// r is exact to ~1e-20.
inline double cos_approx(double t) {
  const double shifter = 0x1.8p52;
  const double q = (t * 0.63661977236758134308 + shifter) - shifter;  // round to nearest
  const double r = (t - q * 1.57079632673412561417e+00) - q * 6.07710050650619224932e-11;
  const double w = r * r;
  double c = 1.0 / 2432902008176640000.0;  // 1/20!
  c = c * -w + 1.0 / 6402373705728000.0;   // 1/18!
  c = c * -w + 1.0 / 20922789888000.0;     // 1/16!
  c = c * -w + 1.0 / 87178291200.0;        // 1/14!
  c = c * -w + 1.0 / 479001600.0;          // 1/12!
  c = c * -w + 1.0 / 3628800.0;            // 1/10!
  c = c * -w + 1.0 / 40320.0;              // 1/8!
  c = c * -w + 1.0 / 720.0;
  c = c * -w + 1.0 / 24.0;
  c = c * -w + 0.5;
  c = 1.0 - w * c;
  double s = 1.0 / 121645100408832000.0;   // 1/19!
  s = s * -w + 1.0 / 355687428096000.0;    // 1/17!
  s = s * -w + 1.0 / 1307674368000.0;      // 1/15!
  s = s * -w + 1.0 / 6227020800.0;         // 1/13!
  s = s * -w + 1.0 / 39916800.0;           // 1/11!
  s = s * -w + 1.0 / 362880.0;             // 1/9!
  s = s * -w + 1.0 / 5040.0;
  s = s * -w + 1.0 / 120.0;
  s = s * -w + 1.0 / 6.0;
  s = r - r * w * s;
  // cos(q pi/2 + r) = cos r, -sin r, -cos r, sin r for q = 0, 1, 2, 3 (4 is 0 again).
  const double odd = (q == 1.0 || q == 3.0) ? s : c;
  return (q == 1.0 || q == 2.0) ? -odd : odd;
}

inline uint32_t float_bits(double x) {
  const float f = (float)x;
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// One block: n values (n <= kBlock) from the stream at rng's state.
void fill_block(Rng rng, float* out, int64_t n, double scale) {
  double u[kTile], v[kTile], root[kTile], value[kTile], band[kTile];
  uint8_t near[kTile];
  for (int64_t at = 0; at < n; at += kTile) {
    const int64_t m = std::min<int64_t>(kTile, n - at);
    for (int64_t i = 0; i < m; i++) {  // the order Rng::normal draws them in
      u[i] = 1.0 - rng.uniform();
      v[i] = rng.uniform();
    }
    for (int64_t i = 0; i < m; i++) {
      root[i] = -2.0 * log_approx(u[i]);
      value[i] = cos_approx(kTwoPi * v[i]);
    }
    // Apart: std::sqrt may set errno, which keeps the compiler from vectorising a loop around it.
    for (int64_t i = 0; i < m; i++) root[i] = std::sqrt(root[i]);
    for (int64_t i = 0; i < m; i++) {
      value[i] = scale * (root[i] * value[i]);
      // What separates this value from the exact path's, with a wide margin: the two logs and
      // cosines each within ~1e-16 of the truth, a few roundings of the products.
      band[i] = std::fabs(scale) * root[i] * 4e-14 + 1e-300;
    }
    for (int64_t i = 0; i < m; i++) {
      out[at + i] = (float)value[i];
      near[i] = float_bits(value[i] - band[i]) != float_bits(value[i] + band[i]);
    }
    for (int64_t i = 0; i < m; i++)  // about one value in 1e5
      if (near[i]) out[at + i] = (float)(scale * Rng::box_muller(u[i], v[i]));
  }
}

}  // namespace

void fill_normals(Rng& rng, float* out, int64_t n, double scale, const ParallelFor& parallel) {
  if (n <= 0) return;
  static const RngJump block_jump(kLog2Block + 1);  // two next() per value
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<Rng> starts;
  starts.reserve((size_t)blocks);
  Rng at = rng;
  for (int64_t b = 0; b < blocks; b++) {
    starts.push_back(at);
    if (b + 1 < blocks) block_jump.advance(at);
  }
  parallel(blocks, [&](int64_t b) {
    fill_block(starts[(size_t)b], out + b * kBlock, std::min(kBlock, n - b * kBlock), scale);
  });
  // Leave rng after the last block's draws.
  const int64_t rest = n - (blocks - 1) * kBlock;
  for (int64_t i = 0; i < 2 * rest; i++) at.next();
  rng = at;
}

}  // namespace temper
