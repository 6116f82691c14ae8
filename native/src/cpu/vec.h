// Eight-float vectors through GCC/Clang vector extensions: the compiler maps them onto AVX2
// (or whatever -march gives) without intrinsics, and the loops that use them stay readable.
// exp8 is a 1-2 ulp exp on [-87, 88] (clamped outside), since libm's expf is
// scalar and was a visible share of a decode step.
#pragma once
#include <cstdint>
#include <cstring>

namespace temper {

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

inline v8 splat8(float x) { return v8{x, x, x, x, x, x, x, x}; }

inline float hsum8(v8 v) {
  float a = (v[0] + v[4]) + (v[1] + v[5]), b = (v[2] + v[6]) + (v[3] + v[7]);
  return a + b;
}

// Σ a[i] b[i] over n floats: eight lanes, then their halving sum, then the tail in order. One
// fixed order, so every caller that must agree bit for bit (decode and batch-invariant attention,
// the batch-invariant products) sums alike.
inline float dot8(const float* a, const float* b, int64_t n) {
  const int64_t n8 = n & ~int64_t(7);
  v8 acc = splat8(0);
  for (int64_t i = 0; i < n8; i += 8) acc += load8(a + i) * load8(b + i);
  float s = hsum8(acc);
  for (int64_t i = n8; i < n; i++) s += a[i] * b[i];
  return s;
}

inline v8 exp8(v8 x) {
  const v8 lo = splat8(-87.0f), hi = splat8(88.0f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const v8 magic = splat8(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  v8 n = (x * splat8(1.44269504f) + magic) - magic;
  v8 r = x - n * splat8(0.693145752f) - n * splat8(1.42860677e-6f);
  v8 p = splat8(1.0f / 5040);
  p = p * r + splat8(1.0f / 720);
  p = p * r + splat8(1.0f / 120);
  p = p * r + splat8(1.0f / 24);
  p = p * r + splat8(1.0f / 6);
  p = p * r + splat8(0.5f);
  p = p * r + splat8(1.0f);
  p = p * r + splat8(1.0f);
  v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// out[i] = exp(x[i] - shift) for n values; returns their sum.
inline float exp_shifted(float* out, const float* x, float shift, int64_t n) {
  v8 acc = splat8(0), s = splat8(shift);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    v8 e = exp8(load8(x + i) - s);
    store8(out + i, e);
    acc += e;
  }
  float sum = hsum8(acc);
  if (i < n) {
    float tail[8] = {0}, res[8];
    std::memcpy(tail, x + i, (n - i) * sizeof(float));
    store8(res, exp8(load8(tail) - s));
    for (int64_t j = 0; j < n - i; j++) sum += (out[i + j] = res[j]);
  }
  return sum;
}

}  // namespace temper
