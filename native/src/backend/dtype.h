// Element types: what safetensors files hold, and what backends compute in. bf16 is the top half
// of an fp32 (rounded to nearest even); the conversions here are the ones every part of the engine
// uses, so a weight rounded on the host, on the CPU backend or by a CUDA kernel is the same bits.
#pragma once
#include <cstdint>
#include <cstring>

namespace temper {

enum class DType { F32, F16, BF16, F64, I32, I64, I16, I8, U8, BOOL };

// fp32 -> bf16 with round-to-nearest-even, NaN kept a (quiet) NaN: what __float2bfloat16_rn does.
inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

inline float bf16_value(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace temper
