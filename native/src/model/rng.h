// xoshiro256** seeded through splitmix64: small, fast, and the same stream on every platform
// (std:: distributions are not), which is what "same seed, same output" needs.
#pragma once
#include <cmath>
#include <cstdint>

namespace temper {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller from two uniforms (normals.h draws the same values in bulk)
    double u = 1.0 - uniform(), v = uniform();
    return box_muller(u, v);
  }
  static double box_muller(double u, double v) {
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

  // The 256-bit state: the generator is linear in it over GF(2), which is what lets
  // RngJump skip ahead.
  const uint64_t* state() const { return s_; }
  void set_state(const uint64_t* s) {
    for (int i = 0; i < 4; i++) s_[i] = s[i];
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Skips 2^log2_steps calls of next() at once: the state update is a 256x256 bit matrix, squared
// log2_steps times. Applying it costs 256 xors of 4 words, so the start of every block of a long
// stream is found without drawing the stream (the blocks are then drawn in parallel).
class RngJump {
 public:
  explicit RngJump(int log2_steps) {
    for (int j = 0; j < 256; j++) {  // column j: one step from the state with only bit j set
      uint64_t e[4] = {0, 0, 0, 0};
      e[j / 64] = 1ull << (j % 64);
      Rng r(0);
      r.set_state(e);
      r.next();
      for (int w = 0; w < 4; w++) cols_[j][w] = r.state()[w];
    }
    for (int k = 0; k < log2_steps; k++) {
      uint64_t sq[256][4];
      for (int j = 0; j < 256; j++) apply(cols_[j], sq[j]);
      for (int j = 0; j < 256; j++)
        for (int w = 0; w < 4; w++) cols_[j][w] = sq[j][w];
    }
  }
  void advance(Rng& r) const {
    uint64_t out[4];
    apply(r.state(), out);
    r.set_state(out);
  }

 private:
  void apply(const uint64_t* x, uint64_t* out) const {
    uint64_t y[4] = {0, 0, 0, 0};
    for (int j = 0; j < 256; j++)
      if ((x[j / 64] >> (j % 64)) & 1)
        for (int w = 0; w < 4; w++) y[w] ^= cols_[j][w];
    for (int w = 0; w < 4; w++) out[w] = y[w];
  }
  uint64_t cols_[256][4];
};

}  // namespace temper
