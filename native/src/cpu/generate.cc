// Batched sampling with a KV cache. Every completion owns a cache slot; a step runs the rows
// of all unfinished slots through the decoder at once (one GEMM per projection), whatever
// their lengths, because each row carries its own slot and position. Prompts are prefilled in
// one such step; the n samples of a prompt copy its cache instead of recomputing it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

#include "cpu/activations.h"
#include "cpu/rng.h"
#include "cpu/vec.h"

namespace temper {

namespace {

struct KvCache {
  int64_t slots = 0, cap = 0, heads = 0, dim = 0;
  std::vector<Buf> k, v;  // per layer [slots, heads, cap, dim]
  float* at(Buf& buf, int64_t slot, int64_t head, int64_t pos) {
    return buf.data() + ((slot * heads + head) * cap + pos) * dim;
  }
};

// Runs rows (token tok[r] of slot slot[r] at position pos[r]) through the decoder, appending
// their keys and values to the cache; logits[want.size(), V] for the rows listed in want.
void infer_rows(Model& m, KvCache& kv, const std::vector<int32_t>& tok, const std::vector<int32_t>& slot,
                const std::vector<int32_t>& pos, const std::vector<int64_t>& want, float* logits) {
  const Config& c = m.cfg;
  const int64_t R = (int64_t)tok.size(), C = c.hidden, Q = c.heads * c.head_dim, K = c.kv_heads * c.head_dim,
                F = c.inter, H = c.heads, KV = c.kv_heads, D = c.head_dim;
  ThreadPool& pool = m.pool;
  Buf x(R * C), ln(R * C), q(R * Q), k(R * K), v(R * K), ao(R * Q), tmp(R * C), g(R * F), u(R * F);
  embedding_forward(pool, x.data(), tok.data(), m.embed.data.data(), R, C);
  auto add = [&](float* dst, const float* src, int64_t n) {
    pool.chunks(n, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; i++) dst[i] += src[i];
    });
  };
  // Without adapters each layer is six parallel loops: RMSNorm and q/k/v as one, rope with the
  // cache write, attention, o_proj adding into the residual, RMSNorm and gate/up with SwiGLU,
  // down adding into the residual.
  auto plain = [](const Linear& x) { return !x.lora; };
  auto bias = [](const Linear& x) { return x.b.data.empty() ? nullptr : x.b.data.data(); };
  for (int64_t l = 0; l < c.layers; l++) {
    Layer& L = m.layers[l];
    if (plain(L.q) && plain(L.k) && plain(L.v)) {
      matmul_many(pool, x.data(), R, C,
                  {{q.data(), L.q.w.data.data(), bias(L.q), Q, false},
                   {k.data(), L.k.w.data.data(), bias(L.k), K, false},
                   {v.data(), L.v.w.data.data(), bias(L.v), K, false}},
                  nullptr, L.ln1.data.data(), (float)c.eps);
    } else {
      rmsnorm_forward(pool, ln.data(), nullptr, x.data(), L.ln1.data.data(), R, C, (float)c.eps);
      L.q.forward(pool, q.data(), ln.data(), R, nullptr);
      L.k.forward(pool, k.data(), ln.data(), R, nullptr);
      L.v.forward(pool, v.data(), ln.data(), R, nullptr);
    }
    pool.chunks(R, [&](int64_t lo, int64_t hi, int) {
      rope_rows(q.data(), pos.data(), lo, hi, H, D, m.rope, false);
      rope_rows(k.data(), pos.data(), lo, hi, KV, D, m.rope, false);
      for (int64_t r = lo; r < hi; r++)
        for (int64_t h = 0; h < KV; h++) {
          std::copy_n(k.data() + r * K + h * D, D, kv.at(kv.k[l], slot[r], h, pos[r]));
          std::copy_n(v.data() + r * K + h * D, D, kv.at(kv.v[l], slot[r], h, pos[r]));
        }
    });
    attention_cached(pool, ao.data(), q.data(), kv.k[l].data(), kv.v[l].data(), slot.data(), pos.data(), R, kv.cap,
                     H, KV, D);
    if (plain(L.o)) {
      matmul_many(pool, ao.data(), R, Q, {{x.data(), L.o.w.data.data(), bias(L.o), C, true}}, nullptr);
    } else {
      L.o.forward(pool, tmp.data(), ao.data(), R, nullptr);
      add(x.data(), tmp.data(), R * C);
    }
    if (plain(L.gate) && plain(L.up)) {
      matmul_many(pool, x.data(), R, C,
                  {{g.data(), L.gate.w.data.data(), bias(L.gate), F, false},
                   {u.data(), L.up.w.data.data(), bias(L.up), F, false}},
                  [&](int64_t p, int64_t parts) {
                    auto [lo, hi] = column_slice(F, p, parts);
                    for (int64_t r = 0; r < R; r++)
                      swiglu_serial(g.data() + r * F + lo, g.data() + r * F + lo, u.data() + r * F + lo, hi - lo);
                  },
                  L.ln2.data.data(), (float)c.eps);
    } else {
      rmsnorm_forward(pool, ln.data(), nullptr, x.data(), L.ln2.data.data(), R, C, (float)c.eps);
      L.gate.forward(pool, g.data(), ln.data(), R, nullptr);
      L.up.forward(pool, u.data(), ln.data(), R, nullptr);
      swiglu_forward(pool, g.data(), g.data(), u.data(), R * F);
    }
    if (plain(L.down)) {
      matmul_many(pool, g.data(), R, F, {{x.data(), L.down.w.data.data(), bias(L.down), C, true}}, nullptr);
    } else {
      L.down.forward(pool, tmp.data(), g.data(), R, nullptr);
      add(x.data(), tmp.data(), R * C);
    }
  }
  const int64_t W = (int64_t)want.size();
  Buf xs(W * C), lns(W * C);
  for (int64_t i = 0; i < W; i++) std::copy(x.data() + want[i] * C, x.data() + (want[i] + 1) * C, xs.data() + i * C);
  rmsnorm_forward(pool, lns.data(), nullptr, xs.data(), m.norm.data.data(), W, C, (float)c.eps);
  const Tensor& head = c.tied ? m.embed : m.lm_head;
  matmul_many(pool, lns.data(), W, C, {{logits, head.data.data(), nullptr, c.vocab, false}}, nullptr);
}

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
// unmodified model's log-probability of the pick, the number logprobs() gives for the same token.
// The cuts are thresholds on p found by bisection over vectorised passes: no sort, no branches on
// the data, a few tens of microseconds for a 8k vocabulary.
int32_t pick(const float* l, int64_t V, const SamplingParams& sp, Rng& rng, float* logprob) {
  float mx = l[0];
  for (int64_t j = 1; j < V; j++) mx = std::max(mx, l[j]);
  int64_t arg = 0;
  while (l[arg] != mx) arg++;
  thread_local std::vector<float> p;
  p.resize(V);
  const double lse = mx + std::log((double)exp_shifted(p.data(), l, mx, V));
  if (sp.temperature <= 0) {
    *logprob = (float)(l[arg] - lse);
    return (int32_t)arg;
  }
  if (sp.temperature != 1) {
    const float inv_t = (float)(1.0 / sp.temperature);
    for (int64_t j = 0; j < V; j++) p[j] = (l[j] - mx) * inv_t;
    exp_shifted(p.data(), p.data(), 0.0f, V);
  }
  double mass;
  int64_t count;
  float cut = 0;  // tokens with p < cut are out
  if (sp.top_k > 0 && sp.top_k < V) {
    cut = highest([&](float t) {
      at_least(p.data(), V, t, &mass, &count);
      return count >= sp.top_k;
    });
  }
  if (sp.top_p < 1) {
    at_least(p.data(), V, cut, &mass, &count);
    const double target = sp.top_p * mass;
    const float floor = cut;
    cut = highest([&](float t) {
      at_least(p.data(), V, std::max(t, floor), &mass, &count);
      return mass >= target;
    });
  }
  at_least(p.data(), V, cut, &mass, &count);
  double u = rng.uniform() * mass, acc = 0;
  int32_t chosen = (int32_t)arg;
  for (int64_t j = 0; j < V; j++) {
    if (p[j] < cut) continue;
    acc += p[j];
    chosen = (int32_t)j;
    if (u < acc) break;
  }
  *logprob = (float)(l[chosen] - lse);
  return chosen;
}

}  // namespace

std::vector<Completion> Model::generate(const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp) {
  const int64_t P = (int64_t)prompts.size(), S = P * sp.n, V = cfg.vocab;
  if (P == 0) throw std::runtime_error("prompts is empty");
  int64_t longest = 0;
  for (int64_t i = 0; i < P; i++) {
    if (prompts[i].empty()) throw std::runtime_error("prompts[" + std::to_string(i) + "] is empty");
    check_tokens(prompts[i].data(), (int64_t)prompts[i].size(), ("prompts[" + std::to_string(i) + "]").c_str());
    longest = std::max<int64_t>(longest, (int64_t)prompts[i].size());
  }
  acts_.reset();
  KvCache kv;
  kv.slots = S;
  kv.cap = longest + sp.max_new;
  kv.heads = cfg.kv_heads;
  kv.dim = cfg.head_dim;
  check_memory(4.0 * ((double)S * (2.0 * cfg.layers * kv.cap * kv.heads * kv.dim + V) +
                      (double)longest * P * (4.0 * cfg.hidden + 3.0 * cfg.inter)),
               "generating " + std::to_string(S) + " completions of up to " + std::to_string(kv.cap) + " tokens");
  for (int64_t l = 0; l < cfg.layers; l++) {
    kv.k.emplace_back((size_t)(S * kv.heads * kv.cap * kv.dim));
    kv.v.emplace_back((size_t)(S * kv.heads * kv.cap * kv.dim));
  }
  rope.ensure(cfg.rope_theta, cfg.head_dim, kv.cap, cfg.rope_scaling);

  std::vector<Completion> out(S);
  if (sp.max_new == 0) {
    for (auto& c : out) c.finish = "length";
    return out;
  }
  std::vector<Rng> rngs;
  for (int64_t i = 0; i < P; i++)
    for (int64_t j = 0; j < sp.n; j++) {
      uint64_t s = sp.seed;
      rngs.emplace_back(splitmix64(s) ^ ((uint64_t)i * 0xD1B54A32D192ED03ull) ^ ((uint64_t)j * 0x8CB92BA72F3D8DD7ull));
    }
  std::set<int32_t> stop(sp.stop.begin(), sp.stop.end());

  // Prefill: every prompt's tokens in one step, into the slot of its first sample.
  std::vector<int32_t> tok, slot, pos;
  std::vector<int64_t> want;
  for (int64_t i = 0; i < P; i++) {
    for (size_t t = 0; t < prompts[i].size(); t++) {
      tok.push_back(prompts[i][t]);
      slot.push_back((int32_t)(i * sp.n));
      pos.push_back((int32_t)t);
    }
    want.push_back((int64_t)tok.size() - 1);
  }
  Buf logits(std::max<int64_t>(P, S) * V);
  infer_rows(*this, kv, tok, slot, pos, want, logits.data());
  for (int64_t i = 0; i < P; i++)
    for (int64_t j = 1; j < sp.n; j++)
      for (int64_t l = 0; l < cfg.layers; l++)
        for (int64_t h = 0; h < kv.heads; h++) {
          int64_t n = (int64_t)prompts[i].size() * kv.dim;
          std::copy_n(kv.at(kv.k[l], i * sp.n, h, 0), n, kv.at(kv.k[l], i * sp.n + j, h, 0));
          std::copy_n(kv.at(kv.v[l], i * sp.n, h, 0), n, kv.at(kv.v[l], i * sp.n + j, h, 0));
        }

  // rows[r] is the slot whose logits are in logits row r.
  std::vector<int64_t> rows(S), row_of_logits(S);
  for (int64_t s = 0; s < S; s++) {
    rows[s] = s;
    row_of_logits[s] = s / sp.n;
  }
  for (;;) {
    const int64_t R = (int64_t)rows.size();
    std::vector<int32_t> picked(R);
    std::vector<float> lp(R);
    pool.run(R, [&](int64_t r) {
      picked[r] = pick(logits.data() + row_of_logits[r] * V, V, sp, rngs[rows[r]], &lp[r]);
    });
    std::vector<int64_t> next;
    tok.clear();
    slot.clear();
    pos.clear();
    for (int64_t r = 0; r < R; r++) {
      int64_t s = rows[r];
      Completion& c = out[s];
      c.tokens.push_back(picked[r]);
      c.logprobs.push_back(lp[r]);
      if (stop.count(picked[r])) {
        c.finish = "stop";
      } else if ((int64_t)c.tokens.size() >= sp.max_new) {
        c.finish = "length";
      } else {
        next.push_back(s);
        tok.push_back(picked[r]);
        slot.push_back((int32_t)s);
        pos.push_back((int32_t)(prompts[s / sp.n].size() + c.tokens.size() - 1));
      }
    }
    if (next.empty()) break;
    rows = next;
    want.resize(rows.size());
    row_of_logits.resize(rows.size());
    for (size_t r = 0; r < rows.size(); r++) want[r] = row_of_logits[r] = (int64_t)r;
    infer_rows(*this, kv, tok, slot, pos, want, logits.data());
  }
  return out;
}

}  // namespace temper
