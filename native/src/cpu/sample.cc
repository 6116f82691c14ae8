// Token sampling, one pick per task: greedy, or temperature then top-k then top-p with the draw
// the model made from the completion's own random stream (backend/ops.h, sample).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/vec.h"

namespace temper {

namespace {

// Mass and count of the values p[j] >= t, without branching on the data.
void at_least(const float* p, int64_t V, float t, double* mass, int64_t* count) {
  v8 m = splat8(0), c = splat8(0), tv = splat8(t);
  int64_t j = 0;
  for (; j + 8 <= V; j += 8) {
    v8 x = load8(p + j);
    v8i keep = x >= tv;
    m += (v8)((v8i)x & keep);
    c += (v8)((v8i)splat8(1.0f) & keep);
  }
  double ms = hsum8(m);
  int64_t cs = (int64_t)hsum8(c);
  for (; j < V; j++)
    if (p[j] >= t) ms += p[j], cs++;
  *mass = ms;
  *count = cs;
}

// The largest t in [0, 1] with ok(t), found by bisection on the bits of t (their order is the
// order of non-negative floats), so the answer is exactly one of the p values. ok(0) must hold
// and ok may only turn false as t grows.
template <typename Ok>
float highest(Ok ok) {
  uint32_t lo = 0, hi = 0x3F800000u;  // 0.0f, 1.0f
  auto f = [](uint32_t b) {
    float x;
    std::memcpy(&x, &b, 4);
    return x;
  };
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo + 1) / 2;
    if (ok(f(mid))) lo = mid;
    else hi = mid - 1;
  }
  return f(lo);
}

// Picks the next token from one row of logits: greedy at temperature 0, otherwise
// softmax(logits / temperature) cut to the top_k largest, then to the smallest top set holding
// top_p of what is left (HF's order; ties at a cut are kept, as HF does). *logprob is the
// unmodified model's log-probability of the pick, the number logprobs() gives for the same token;
// u in [0, 1) is the completion's draw.
// The cuts are thresholds on p found by bisection over vectorised passes: no sort, no branches on
// the data, a few tens of microseconds for a 8k vocabulary.
int32_t pick(const float* l, int64_t V, double temperature, int64_t top_k, double top_p, double u, float* logprob) {
  float mx = l[0];
  for (int64_t j = 1; j < V; j++) mx = std::max(mx, l[j]);
  int64_t arg = 0;
  while (l[arg] != mx) arg++;
  thread_local std::vector<float> p;
  p.resize(V);
  const double lse = mx + std::log((double)exp_shifted(p.data(), l, mx, V));
  if (temperature <= 0) {
    *logprob = (float)(l[arg] - lse);
    return (int32_t)arg;
  }
  if (temperature != 1) {
    const float inv_t = (float)(1.0 / temperature);
    for (int64_t j = 0; j < V; j++) p[j] = (l[j] - mx) * inv_t;
    exp_shifted(p.data(), p.data(), 0.0f, V);
  }
  double mass;
  int64_t count;
  float cut = 0;  // tokens with p < cut are out
  if (top_k > 0 && top_k < V) {
    cut = highest([&](float t) {
      at_least(p.data(), V, t, &mass, &count);
      return count >= top_k;
    });
  }
  if (top_p < 1) {
    at_least(p.data(), V, cut, &mass, &count);
    const double target = top_p * mass;
    const float floor = cut;
    cut = highest([&](float t) {
      at_least(p.data(), V, std::max(t, floor), &mass, &count);
      return mass >= target;
    });
  }
  at_least(p.data(), V, cut, &mass, &count);
  const double draw = u * mass;
  double acc = 0;
  int32_t chosen = (int32_t)arg;
  for (int64_t j = 0; j < V; j++) {
    if (p[j] < cut) continue;
    acc += p[j];
    chosen = (int32_t)j;
    if (draw < acc) break;
  }
  *logprob = (float)(l[chosen] - lse);
  return chosen;
}

}  // namespace

void sample(ThreadPool& pool, int32_t* token, float* logprob, const float* logits, const int64_t* row_of,
            const double* u, int64_t picks, int64_t V, double temperature, int64_t top_k, double top_p) {
  pool.run(picks, [&](int64_t i) {
    token[i] = pick(logits + row_of[i] * V, V, temperature, top_k, top_p, u[i], &logprob[i]);
  });
}

}  // namespace temper
