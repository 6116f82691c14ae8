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

// One query row's pieces, shared by the decode path and the batch-invariant training path so
// both do the same arithmetic in the same order (their log-probs then agree bit for bit).
inline void softmax_row(float* s, int64_t len) {
  float mx = s[0];
  for (int64_t j = 1; j < len; j++) mx = std::max(mx, s[j]);
  float inv = 1.0f / exp_shifted(s, s, mx, len);
  for (int64_t j = 0; j < len; j++) s[j] *= inv;
}

// o[D] += w * v[D]
inline void add_scaled(float* o, float w, const float* v, int64_t D) {
  const int64_t D8 = D & ~int64_t(7);
  const v8 wv = splat8(w);
  for (int64_t d = 0; d < D8; d += 8) store8(o + d, load8(o + d) + wv * load8(v + d));
  for (int64_t d = D8; d < D; d++) o[d] += w * v[d];
}

// Query rows per task in the batch-invariant forward.
constexpr int64_t kRowsPerTask = 16;

// One kv head's rows of dK and dV (T rows of D floats, KD apart), zeroed before heads add into them.
void zero_head_rows(float* dkb, float* dvb, int64_t T, int64_t KD, int64_t D) {
  for (int64_t t = 0; t < T; t++) {
    std::fill(dkb + t * KD, dkb + t * KD + D, 0.0f);
    std::fill(dvb + t * KD, dvb + t * KD + D, 0.0f);
  }
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
    zero_head_rows(dkb, dvb, T, KD, D);
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

// The same per query row, in attention_cached's arithmetic and order: a row's result depends on
// its own sequence's rows only, never on T or on the blocks a GEMM would cut.
void attention_forward_rows(ThreadPool& pool, float* out, float* att, const float* q, const float* k, const float* v,
                            int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D) {
  const int64_t HD = H * D, KD = KV * D, group = H / KV, tasks_per = (T + kRowsPerTask - 1) / kRowsPerTask;
  const float scale = 1.0f / std::sqrt((float)D);
  pool.run(B * KV * tasks_per, [&](int64_t task) {
    const int64_t bg = task / tasks_per, b = bg / KV, g = bg % KV, i0 = task % tasks_per * kRowsPerTask;
    const float* kb = k + b * T * KD + g * D;
    const float* vb = v + b * T * KD + g * D;
    for (int64_t i = i0; i < std::min(T, i0 + kRowsPerTask); i++) {
      const float* qg = q + (b * T + i) * HD + g * group * D;
      float* og = out + (b * T + i) * HD + g * group * D;
      auto row = [&](int64_t h) { return att + ((b * H + g * group + h) * T + i) * T; };
      for (int64_t j = 0; j <= i; j++)
        for (int64_t h = 0; h < group; h++) row(h)[j] = dot8(qg + h * D, kb + j * KD, D) * scale;
      for (int64_t h = 0; h < group; h++) softmax_row(row(h), i + 1);
      std::fill(og, og + group * D, 0.0f);
      for (int64_t j = 0; j <= i; j++)
        for (int64_t h = 0; h < group; h++) add_scaled(og + h * D, row(h)[j], vb + j * KV * D, D);
    }
  });
}

// Its backward, row by row in a fixed order per (sequence, kv head): rows of a sequence that get
// no gradient (padding, masked tokens) add exact zeros to dK and dV.
void attention_backward_rows(ThreadPool& pool, float* dq, float* dk, float* dv, const float* dout, const float* att,
                             const float* q, const float* k, const float* v, int64_t B, int64_t T, int64_t H,
                             int64_t KV, int64_t D) {
  const int64_t HD = H * D, KD = KV * D, group = H / KV;
  const float scale = 1.0f / std::sqrt((float)D);
  pool.run(B * KV, [&](int64_t bg) {
    const int64_t b = bg / KV, g = bg % KV;
    thread_local std::vector<float> ds;
    if ((int64_t)ds.size() < T) ds.resize(T);
    const float* kb = k + b * T * KD + g * D;
    const float* vb = v + b * T * KD + g * D;
    float* dkb = dk + b * T * KD + g * D;
    float* dvb = dv + b * T * KD + g * D;
    zero_head_rows(dkb, dvb, T, KD, D);
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
      for (int64_t i = 0; i < T; i++) {
        const float* p = att + ((b * H + h) * T + i) * T;
        const float* doi = dout + (b * T + i) * HD + h * D;
        const float* qi = q + (b * T + i) * HD + h * D;
        float* dqi = dq + (b * T + i) * HD + h * D;
        float dot = 0;
        for (int64_t j = 0; j <= i; j++) {
          ds[j] = dot8(doi, vb + j * KD, D);
          dot += p[j] * ds[j];
        }
        std::fill(dqi, dqi + D, 0.0f);
        for (int64_t j = 0; j <= i; j++) {
          const float dsj = p[j] * (ds[j] - dot) * scale;
          add_scaled(dqi, dsj, kb + j * KD, D);
          add_scaled(dkb + j * KD, dsj, qi, D);
          add_scaled(dvb + j * KD, p[j], doi, D);
        }
      }
    }
  });
}

// Where (slot, position, kv head h) starts in a layer's k or v pool, in floats.
static inline int64_t cache_at(const KvLayer& c, int32_t slot, int64_t p, int64_t h, int64_t KV, int64_t D) {
  const int64_t blk = c.table[(int64_t)slot * (c.cap / c.block) + p / c.block];
  return ((blk * KV + h) * c.block + p % c.block) * D;
}

namespace {

// o[D] = Σ_j w[j] v[j, D] over n value rows (vD floats apart), j ascending: add_scaled's
// arithmetic per element, with 64 of o's floats held in registers across all j instead of
// loaded and stored for every row.
void weighted_rows(float* o, const float* w, const float* v, int64_t n, int64_t vD, int64_t D) {
  int64_t d0 = 0;
  for (; d0 + 64 <= D; d0 += 64) {
    v8 acc[8];
    for (int u = 0; u < 8; u++) acc[u] = load8(o + d0 + 8 * u);
    for (int64_t j = 0; j < n; j++) {
      const v8 wj = splat8(w[j]);
      for (int u = 0; u < 8; u++) acc[u] = acc[u] + wj * load8(v + j * vD + d0 + 8 * u);
    }
    for (int u = 0; u < 8; u++) store8(o + d0 + 8 * u, acc[u]);
  }
  if (d0 < D)
    for (int64_t j = 0; j < n; j++) add_scaled(o + d0, w[j], v + j * vD + d0, D - d0);
}

}  // namespace

// q[R,H,D] -> out[R,H,D]; row r attends to its slot's positions 0..pos[r] through the block table.
// One task per (row, kv head): the query heads of a group share each key and value row read,
// and within a block a kv head's positions are contiguous, so the reads stream block by block.
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
      for (int64_t j = j0; j < std::min(len, j0 + B); j++) {
        const float* kj = kb + (j - j0) * D;
        for (int64_t h = 0; h < group; h++) s[h * len + j] = dot8(qg + h * D, kj, D) * scale;
      }
    }
    for (int64_t h = 0; h < group; h++) softmax_row(s.data() + h * len, len);
    std::fill(og, og + group * D, 0.0f);
    for (int64_t j0 = 0; j0 < len; j0 += B) {
      const float* vb = vcache + cache_at(c, slot[r], j0, g, KV, D);
      const int64_t n = std::min(len, j0 + B) - j0;
      for (int64_t h = 0; h < group; h++) weighted_rows(og + h * D, s.data() + h * len + j0, vb, n, D, D);
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
