// Causal grouped-query attention: query head h reads key/value head h / (H / KV).
// Training works per (sequence, head) with two GEMMs; generation per (row, head) over a cache.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace temper {

namespace {

// Rows are handled in blocks of kBlock so the GEMMs skip the masked upper triangle: a block of
// rows [r0, r0 + n) only reads columns [0, r0 + n).
constexpr int64_t kBlock = 64;

// Softmax of row i over columns [0, i]; columns (i, end) are set to 0 for the GEMMs that read them.
void causal_softmax_row(float* r, int64_t i, int64_t end) {
  float mx = r[0];
  for (int64_t j = 1; j <= i; j++) mx = std::max(mx, r[j]);
  float inv = 1.0f / exp_shifted(r, r, mx, i + 1);
  for (int64_t j = 0; j <= i; j++) r[j] *= inv;
  for (int64_t j = i + 1; j < end; j++) r[j] = 0;
}

// The probabilities of rows [r0, r0 + rn) of one (sequence, head), into p (row i at p + (i - r0) * T):
// the scores q k^T, then each row's causal softmax. Forward and backward both call this, so the
// backward's probabilities are the forward's, bit for bit, without [B, H, T, T] held in between.
void causal_probs(float* p, const float* qb, const float* kb, int64_t HD, int64_t KD, int64_t T, int64_t D,
                  float scale, int64_t r0, int64_t rn) {
  const int64_t cols = r0 + rn;
  gemm_serial(false, true, rn, cols, D, scale, qb + r0 * HD, HD, kb, KD, 0.0f, p, T);
  for (int64_t i = r0; i < cols; i++) causal_softmax_row(p + (i - r0) * T, i, cols);
}

// A pool thread's [kBlock, T] block of floats (pool threads live on, so it stays allocated
// between steps: kBlock x T floats per thread, not T x T per head).
float* thread_block(std::vector<float>& v, int64_t T) {
  if (v.size() < (size_t)(kBlock * T)) v.resize(kBlock * T);
  return v.data();
}

}  // namespace

// q[B,T,H,D], k,v[B,T,KV,D] -> out[B,T,H,D], a block of rows at a time; nothing is kept.
void attention_forward(ThreadPool& pool, float* out, const float* q, const float* k, const float* v, int64_t B,
                       int64_t T, int64_t H, int64_t KV, int64_t D) {
  const int64_t HD = H * D, KD = KV * D, group = H / KV;
  const float scale = 1.0f / std::sqrt((float)D);
  pool.run(B * H, [&](int64_t bh) {
    int64_t b = bh / H, h = bh % H, g = h / group;
    const float* qb = q + b * T * HD + h * D;
    const float* kb = k + b * T * KD + g * D;
    const float* vb = v + b * T * KD + g * D;
    thread_local std::vector<float> block;
    float* s = thread_block(block, T);
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      int64_t rn = std::min(kBlock, T - r0), cols = r0 + rn;
      causal_probs(s, qb, kb, HD, KD, T, D, scale, r0, rn);
      gemm_serial(false, false, rn, D, cols, 1.0f, s, T, vb, KD, 0.0f, out + (b * T + r0) * HD + h * D, HD);
    }
  });
}

// With P the probabilities (computed again per block of rows): dV = P^T dO, dP = dO V^T,
// dS = P * (dP - rowsum(P * dP)), dQ = scale dS K, dK = scale dS^T Q.
// Work is split per (sequence, kv head) so the heads sharing a kv head add into dK, dV on one thread.
void attention_backward(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  const int64_t HD = H * D, KD = KV * D, group = H / KV;
  const float scale = 1.0f / std::sqrt((float)D);
  pool.run(B * KV, [&](int64_t bg) {
    int64_t b = bg / KV, g = bg % KV;
    thread_local std::vector<float> p_block, ds_block;
    float* p = thread_block(p_block, T);
    float* ds = thread_block(ds_block, T);
    const float* kb = k + b * T * KD + g * D;
    const float* vb = v + b * T * KD + g * D;
    float* dkb = dk + b * T * KD + g * D;
    float* dvb = dv + b * T * KD + g * D;
    for (int64_t t = 0; t < T; t++) {
      std::fill(dkb + t * KD, dkb + t * KD + D, 0.0f);
      std::fill(dvb + t * KD, dvb + t * KD + D, 0.0f);
    }
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
      const float* dob = dout + b * T * HD + h * D;
      const float* qb = q + b * T * HD + h * D;
      for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
        int64_t rn = std::min(kBlock, T - r0), cols = r0 + rn;
        causal_probs(p, qb, kb, HD, KD, T, D, scale, r0, rn);
        gemm_serial(true, false, cols, D, rn, 1.0f, p, T, dob + r0 * HD, HD, 1.0f, dvb, KD);
        gemm_serial(false, true, rn, cols, D, 1.0f, dob + r0 * HD, HD, vb, KD, 0.0f, ds, T);
        for (int64_t i = r0; i < cols; i++) {
          const float* pi = p + (i - r0) * T;
          float* di = ds + (i - r0) * T;
          float dot = 0;
          for (int64_t j = 0; j <= i; j++) dot += pi[j] * di[j];
          for (int64_t j = 0; j <= i; j++) di[j] = pi[j] * (di[j] - dot);
          for (int64_t j = i + 1; j < cols; j++) di[j] = 0;
        }
        gemm_serial(false, false, rn, D, cols, scale, ds, T, kb, KD, 0.0f, dq + (b * T + r0) * HD + h * D, HD);
        gemm_serial(true, false, cols, D, rn, scale, ds, T, qb + r0 * HD, HD, 1.0f, dkb, KD);
      }
    }
  });
}

// Where (slot, position, kv head h) starts in a layer's k or v pool, in floats.
static inline int64_t cache_at(const KvLayer& c, int32_t slot, int64_t p, int64_t h, int64_t KV, int64_t D) {
  const int64_t blk = c.table[(int64_t)slot * (c.cap / c.block) + p / c.block];
  return ((blk * KV + h) * c.block + p % c.block) * D;
}

// Eight dot products at once: the sum of each of a[0..7]'s lanes, in lane i of the result. Each
// sum is added in hsum8's order ((0+4)+(1+5))+((2+6)+(3+7)), so a score is the same bits as one
// reduced alone.
static inline v8 hsum8x8(const v8* a) {
  auto halves = [](v8 x, v8 y) {  // [x0+x4 .. x3+x7, y0+y4 .. y3+y7]
    return __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11) +
           __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15);
  };
  auto pairs = [](v8 x, v8 y) {  // neighbouring lanes added: [x0+x1, x2+x3, .., y6+y7]
    return __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14) +
           __builtin_shufflevector(x, y, 1, 3, 5, 7, 9, 11, 13, 15);
  };
  const v8 e01 = halves(a[0], a[1]), e23 = halves(a[2], a[3]), e45 = halves(a[4], a[5]), e67 = halves(a[6], a[7]);
  return pairs(pairs(e01, e23), pairs(e45, e67));
}

// s[j] = scale * q . k[j] for the n <= 8 rows k[0..n) of a block (row pitch D).
static inline void scores8(float* s, const float* q, const float* k, int64_t n, int64_t D, float scale) {
  const int64_t D8 = D & ~int64_t(7);
  const float* rows[8];
  for (int64_t j = 0; j < 8; j++) rows[j] = k + std::min(j, n - 1) * D;  // lanes past n repeat the last row
  v8 acc[8];
  for (int64_t j = 0; j < 8; j++) acc[j] = splat8(0);
  for (int64_t d = 0; d < D8; d += 8) {
    const v8 qd = load8(q + d);
    for (int64_t j = 0; j < 8; j++) acc[j] += qd * load8(rows[j] + d);
  }
  const v8 dots = hsum8x8(acc);
  for (int64_t j = 0; j < n; j++) {
    float dot = dots[j];
    for (int64_t d = D8; d < D; d++) dot += q[d] * rows[j][d];
    s[j] = dot * scale;
  }
}

// o[0..8*DV) += sum_j w[j] v[j] over the n rows of a block (row pitch 8*DV), the running sum held
// in registers, added in j order as the plain loop does.
template <int DV>
static inline void weighted_rows(float* o, const float* w, const float* v, int64_t n) {
  v8 acc[DV];
  for (int i = 0; i < DV; i++) acc[i] = load8(o + 8 * i);
  for (int64_t j = 0; j < n; j++) {
    const v8 wj = splat8(w[j]);
    const float* vj = v + j * 8 * DV;
    for (int i = 0; i < DV; i++) acc[i] += wj * load8(vj + 8 * i);
  }
  for (int i = 0; i < DV; i++) store8(o + 8 * i, acc[i]);
}

static void weighted_rows_any(float* o, const float* w, const float* v, int64_t n, int64_t D) {
  switch (D) {
    case 64: return weighted_rows<8>(o, w, v, n);
    case 128: return weighted_rows<16>(o, w, v, n);
    default: break;
  }
  const int64_t D8 = D & ~int64_t(7);
  for (int64_t j = 0; j < n; j++) {
    const float* vj = v + j * D;
    const v8 wv = splat8(w[j]);
    for (int64_t d = 0; d < D8; d += 8) store8(o + d, load8(o + d) + wv * load8(vj + d));
    for (int64_t d = D8; d < D; d++) o[d] += w[j] * vj[d];
  }
}

// q[R,H,D] -> out[R,H,D]; row r attends to its slot's positions 0..pos[r] through the block table.
// One task per (row, kv head): within a block a kv head's positions are contiguous, so the reads
// stream block by block, and a block's keys and values stay in L1 while the group's query heads
// use them. Scores come eight positions at a time (one reduction for eight dot products); the
// weighted sum of values keeps each head's output in registers across a block.
void attention_cached(ThreadPool& pool, float* out, const float* q, const KvLayer& c, const int32_t* slot,
                      const int32_t* pos, int64_t R, int64_t H, int64_t KV, int64_t D) {
  const int64_t group = H / KV, B = c.block;
  const float scale = 1.0f / std::sqrt((float)D);
  const float* kcache = static_cast<const float*>(c.k);
  const float* vcache = static_cast<const float*>(c.v);
  pool.run(R * KV, [&](int64_t rg) {
    int64_t r = rg / KV, g = rg % KV, len = (int64_t)pos[r] + 1;
    thread_local std::vector<float> s;  // [group, len] scores, then weights
    if ((int64_t)s.size() < group * len) s.resize(group * len);
    const float* qg = q + (r * H + g * group) * D;
    float* og = out + (r * H + g * group) * D;
    for (int64_t j0 = 0; j0 < len; j0 += B) {
      const float* kb = kcache + cache_at(c, slot[r], j0, g, KV, D);
      const int64_t n = std::min(len - j0, B);
      for (int64_t h = 0; h < group; h++)
        for (int64_t j = 0; j < n; j += 8)
          scores8(s.data() + h * len + j0 + j, qg + h * D, kb + j * D, std::min<int64_t>(8, n - j), D, scale);
    }
    for (int64_t h = 0; h < group; h++) {
      float* sh = s.data() + h * len;
      float mx = sh[0];
      for (int64_t j = 1; j < len; j++) mx = std::max(mx, sh[j]);
      float inv = 1.0f / exp_shifted(sh, sh, mx, len);
      for (int64_t j = 0; j < len; j++) sh[j] *= inv;
    }
    std::fill(og, og + group * D, 0.0f);
    for (int64_t j0 = 0; j0 < len; j0 += B) {
      const float* vb = vcache + cache_at(c, slot[r], j0, g, KV, D);
      const int64_t n = std::min(len - j0, B);
      for (int64_t h = 0; h < group; h++) weighted_rows_any(og + h * D, s.data() + h * len + j0, vb, n, D);
    }
  });
}

// The decode step's rope and cache append in one loop over the rows (the cache rows written are
// the ones attention_cached reads next).
void rope_kv_write(ThreadPool& pool, float* q, float* k, const float* v, const int32_t* slot, const int32_t* pos,
                   int64_t R, int64_t H, int64_t KV, int64_t D, const float* cos, const float* sin,
                   const KvLayer& c) {
  const int64_t K = KV * D;
  float* kcache = static_cast<float*>(c.k);
  float* vcache = static_cast<float*>(c.v);
  pool.chunks(R, [&](int64_t lo, int64_t hi, int) {
    rope_rows(q, pos, lo, hi, H, D, cos, sin, false);
    rope_rows(k, pos, lo, hi, KV, D, cos, sin, false);
    for (int64_t r = lo; r < hi; r++)
      for (int64_t h = 0; h < KV; h++) {
        const int64_t at = cache_at(c, slot[r], pos[r], h, KV, D);
        std::copy_n(k + r * K + h * D, D, kcache + at);
        std::copy_n(v + r * K + h * D, D, vcache + at);
      }
  });
}

}  // namespace temper
