// The training pass over B sequences of T tokens: forward keeping what backward needs,
// and backward from d loss / d logprob. Positions are 0..T-1 in every row; right padding
// needs no mask because attention is causal and padded rows' logprobs are dropped.
#include <cmath>
#include <stdexcept>

#include "cpu/activations.h"

namespace temper {

int64_t Model::pending_rows() const { return acts_ ? acts_->B * (acts_->T - 1) : 0; }

void Model::run_forward(Activations& a) {
  const int64_t N = a.B * a.T, C = cfg.hidden, Q = cfg.heads * cfg.head_dim, K = cfg.kv_heads * cfg.head_dim,
                F = cfg.inter, V = cfg.vocab, H = cfg.heads, KV = cfg.kv_heads, D = cfg.head_dim;
  rope.ensure(cfg.rope_theta, D, a.T, cfg.rope_scaling);
  a.layers.resize(cfg.layers);
  // The residual stream: layer l reads x_in, writes x_mid and the next layer's x_in (x_final at the end).
  auto add = [&](Buf& out, const Buf& x, const Buf& y) {
    out.resize(N * C);
    pool.chunks(N * C, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; i++) out[i] = x[i] + y[i];
    });
  };
  Buf tmp(N * C);
  a.layers[0].x_in.resize(N * C);
  embedding_forward(pool, a.layers[0].x_in.data(), a.tokens.data(), embed.data.data(), N, C);
  for (int64_t l = 0; l < cfg.layers; l++) {
    Layer& L = layers[l];
    LayerActs& s = a.layers[l];
    s.ln1.resize(N * C);
    s.rstd1.resize(N);
    rmsnorm_forward(pool, s.ln1.data(), s.rstd1.data(), s.x_in.data(), L.ln1.data.data(), N, C, (float)cfg.eps);
    s.q.resize(N * Q);
    s.k.resize(N * K);
    s.v.resize(N * K);
    L.q.forward(pool, s.q.data(), s.ln1.data(), N, &s.s[0]);
    L.k.forward(pool, s.k.data(), s.ln1.data(), N, &s.s[1]);
    L.v.forward(pool, s.v.data(), s.ln1.data(), N, &s.s[2]);
    rope_apply(pool, s.q.data(), a.pos.data(), N, H, D, rope, false);
    rope_apply(pool, s.k.data(), a.pos.data(), N, KV, D, rope, false);
    s.att.resize(a.B * H * a.T * a.T);
    s.ao.resize(N * Q);
    attention_forward(pool, s.ao.data(), s.att.data(), s.q.data(), s.k.data(), s.v.data(), a.B, a.T, H, KV, D);
    L.o.forward(pool, tmp.data(), s.ao.data(), N, &s.s[3]);
    add(s.x_mid, s.x_in, tmp);
    s.ln2.resize(N * C);
    s.rstd2.resize(N);
    rmsnorm_forward(pool, s.ln2.data(), s.rstd2.data(), s.x_mid.data(), L.ln2.data.data(), N, C, (float)cfg.eps);
    s.g.resize(N * F);
    s.u.resize(N * F);
    s.h.resize(N * F);
    L.gate.forward(pool, s.g.data(), s.ln2.data(), N, &s.s[4]);
    L.up.forward(pool, s.u.data(), s.ln2.data(), N, &s.s[5]);
    swiglu_forward(pool, s.h.data(), s.g.data(), s.u.data(), N * F);
    L.down.forward(pool, tmp.data(), s.h.data(), N, &s.s[6]);
    add(l + 1 < cfg.layers ? a.layers[l + 1].x_in : a.x_final, s.x_mid, tmp);
  }
  a.lnf.resize(N * C);
  a.rstdf.resize(N);
  rmsnorm_forward(pool, a.lnf.data(), a.rstdf.data(), a.x_final.data(), norm.data.data(), N, C, (float)cfg.eps);
  a.logits.resize(N * V);
  const Tensor& head = cfg.tied ? embed : lm_head;
  matmul_forward(pool, a.logits.data(), a.lnf.data(), head.data.data(), nullptr, N, C, V);
}

static void setup_batch(const Config& c, Activations& a, const int32_t* tokens, int64_t B, int64_t T) {
  double N = (double)B * T;
  double per_layer = N * (6.0 * c.hidden + 4.0 * c.heads * c.head_dim + 2.0 * c.kv_heads * c.head_dim + 3.0 * c.inter) +
                     (double)B * c.heads * T * T;
  Model::check_memory(4.0 * (c.layers * per_layer + N * (2.0 * c.hidden + c.vocab)), "a batch of " +
                      std::to_string(B) + " x " + std::to_string(T) + " tokens");
  a.B = B;
  a.T = T;
  a.tokens.assign(tokens, tokens + B * T);
  a.pos.resize(B * T);
  for (int64_t n = 0; n < B * T; n++) a.pos[n] = (int32_t)(n % T);
}

void Model::forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits) {
  check_tokens(tokens, B * T, "tokens");
  acts_.reset();
  Activations a;
  setup_batch(cfg, a, tokens, B, T);
  run_forward(a);
  logits.assign(a.logits.data(), a.logits.data() + a.logits.size());
}

void Model::logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob,
                     float* entropy, bool keep) {
  if (T < 2) throw std::runtime_error("seqLen must be at least 2 to have a next token");
  for (int64_t b = 0; lengths && b < B; b++)
    if (lengths[b] < 1 || lengths[b] > T)
      throw std::runtime_error("lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                               " is out of range [1, " + std::to_string(T) + "]");
  acts_.reset();
  auto a = std::make_unique<Activations>();
  setup_batch(cfg, *a, tokens, B, T);
  // Padding past a sequence's length may hold anything; it is read as token 0 and never scored.
  for (int64_t b = 0; b < B; b++) {
    int64_t len = lengths ? lengths[b] : T;
    for (int64_t t = len; t < T; t++) a->tokens[b * T + t] = 0;
    check_tokens(a->tokens.data() + b * T, len, ("tokens of sequence " + std::to_string(b)).c_str());
  }
  a->targets.assign(B * T, -1);
  for (int64_t b = 0; b < B; b++) {
    int64_t len = lengths ? lengths[b] : T;
    for (int64_t t = 0; t + 1 < len; t++) a->targets[b * T + t] = a->tokens[b * T + t + 1];
  }
  run_forward(*a);
  const int64_t N = B * T;
  std::vector<float> lp(N), ent(entropy ? N : 0);
  a->lse.resize(N);
  logprob_forward(pool, lp.data(), entropy ? ent.data() : nullptr, a->lse.data(), a->logits.data(),
                  a->targets.data(), N, cfg.vocab);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < T; t++) {
      logprob[b * (T - 1) + t] = lp[b * T + t];
      if (entropy) entropy[b * (T - 1) + t] = ent[b * T + t];
    }
  if (keep) acts_ = std::move(a);
}

void Model::backward(const float* dlogprob) {
  if (!acts_) throw std::runtime_error("backward needs a logprobs call on the batch first (none is pending)");
  std::unique_ptr<Activations> keep = std::move(acts_);  // freed on return, error or not
  Activations& a = *keep;
  const int64_t B = a.B, T = a.T, N = B * T, C = cfg.hidden, Q = cfg.heads * cfg.head_dim,
                K = cfg.kv_heads * cfg.head_dim, F = cfg.inter, V = cfg.vocab, H = cfg.heads, KV = cfg.kv_heads,
                D = cfg.head_dim;
  std::vector<float> w(N, 0.0f);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < T; t++) {
      float d = dlogprob[b * (T - 1) + t];
      if (!std::isfinite(d))
        throw std::runtime_error("dlogprob[" + std::to_string(b * (T - 1) + t) + "] is not a finite number");
      w[b * T + t] = d;
    }
  logprob_backward(pool, a.logits.data(), a.logits.data(), a.lse.data(), a.targets.data(), w.data(), N, V);
  Buf dlnf(N * C), dx(N * C);
  dx.zero();
  Tensor& head = cfg.tied ? embed : lm_head;
  matmul_backward(pool, dlnf.data(), false, head.g(), nullptr, a.logits.data(), a.lnf.data(), head.data.data(), N, C, V);
  a.logits.release();
  rmsnorm_backward(pool, dx.data(), norm.g(), dlnf.data(), a.x_final.data(), norm.data.data(), a.rstdf.data(), N, C);
  Buf dln(N * C), dh(N * F), dg(N * F), du(N * F), dq(N * Q), dk(N * K), dv(N * K), dao(N * Q);
  for (int64_t l = cfg.layers - 1; l >= 0; l--) {
    Layer& L = layers[l];
    LayerActs& s = a.layers[l];
    // MLP: x_out = x_mid + down(silu(gate(ln2)) * up(ln2))
    L.down.backward(pool, dh.data(), false, dx.data(), s.h.data(), N, s.s[6]);
    swiglu_backward(pool, dg.data(), du.data(), dh.data(), s.g.data(), s.u.data(), N * F);
    L.gate.backward(pool, dln.data(), false, dg.data(), s.ln2.data(), N, s.s[4]);
    L.up.backward(pool, dln.data(), true, du.data(), s.ln2.data(), N, s.s[5]);
    rmsnorm_backward(pool, dx.data(), L.ln2.g(), dln.data(), s.x_mid.data(), L.ln2.data.data(), s.rstd2.data(), N, C);
    // Attention: x_mid = x_in + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1)))
    L.o.backward(pool, dao.data(), false, dx.data(), s.ao.data(), N, s.s[3]);
    attention_backward(pool, dq.data(), dk.data(), dv.data(), dao.data(), s.att.data(), s.q.data(), s.k.data(),
                       s.v.data(), B, T, H, KV, D);
    rope_apply(pool, dq.data(), a.pos.data(), N, H, D, rope, true);
    rope_apply(pool, dk.data(), a.pos.data(), N, KV, D, rope, true);
    L.q.backward(pool, dln.data(), false, dq.data(), s.ln1.data(), N, s.s[0]);
    L.k.backward(pool, dln.data(), true, dk.data(), s.ln1.data(), N, s.s[1]);
    L.v.backward(pool, dln.data(), true, dv.data(), s.ln1.data(), N, s.s[2]);
    rmsnorm_backward(pool, dx.data(), L.ln1.g(), dln.data(), s.x_in.data(), L.ln1.data.data(), s.rstd1.data(), N, C);
    s = LayerActs();
  }
  if (embed.g()) embedding_backward(pool, embed.g(), dx.data(), a.tokens.data(), N, C);
}

}  // namespace temper
