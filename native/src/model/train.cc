// The training pass over B sequences of T tokens: forward keeping what backward needs,
// and backward from d loss / d logprob. Positions are 0..T-1 in every row; right padding
// needs no mask because attention is causal and padded rows' logprobs are dropped.
//
// The head never holds the logits of the whole batch (at a 152k vocabulary they would outweigh
// every layer's activations): logprobs computes them a chunk of rows at a time, keeping only
// each row's log-sum-exp, and backward computes each chunk again, turns it into dlogits in place
// and folds it into dlnf and the head's gradient before the next chunk.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/activations.h"

namespace temper {

namespace {

Mat rows(const float* x, int64_t ld) { return {x, DType::F32, ld, false}; }

// logits[n, V] = lnf rows [lo, lo + n) times the head.
void head_logits(Backend& be, float* logits, const float* lnf, int64_t lo, int64_t n, const Param& head, int64_t C,
                 int64_t V) {
  be.gemm(n, V, C, 1.0f, rows(lnf + lo * C, C), head.weight().transposed(C), false, logits, V, nullptr,
          GemmMode::Train);
}

}  // namespace

int64_t Model::pending_rows() const { return acts_ ? acts_->B * (acts_->T - 1) : 0; }

int64_t Model::head_chunk(int64_t N) const {
  int64_t rows = head_chunk_rows > 0 ? head_chunk_rows : kHeadChunkBytes / (4 * cfg.vocab);
  return std::max<int64_t>(1, std::min(rows, N));
}

// Refuses a batch whose buffers would not fit, then puts its tokens, targets and positions in
// backend memory.
void Model::setup_batch(Activations& a, std::vector<int32_t>& tokens, std::vector<int32_t>& targets,
                        bool keep_layers) {
  const Config& c = cfg;
  const int64_t B = a.B, T = a.T;
  double N = (double)B * T;
  // Kept per layer (LayerActs): x_in, x_mid, q, ao, k, v, g, u, two rstd, attention_saved.
  double per_layer = N * (2.0 * c.hidden + 2.0 * c.heads * c.head_dim + 2.0 * c.kv_heads * c.head_dim + 2.0 * c.inter + 2) +
                     (double)be().attention_saved(B, T, c.heads);
  if (c.qk_norm) per_layer += N * (double)(c.heads + c.kv_heads) * (c.head_dim + 1);
  // Without keep_layers: one layer's activations at a time, and every layer's input. Besides the
  // layers: the final norm's input and output, the layers' scratch (LayerScratch) and a head chunk.
  double layers_held = keep_layers ? (double)c.layers : 1.0, inputs_held = keep_layers ? 0.0 : (double)c.layers;
  be().check_memory(4.0 * (layers_held * per_layer + N * ((inputs_held + 4.0) * c.hidden + c.inter + 2) +
                           (double)head_chunk(B * T) * c.vocab),
                    "a batch of " + std::to_string(B) + " x " + std::to_string(T) + " tokens");
  std::vector<int32_t> pos(B * T);
  for (int64_t n = 0; n < B * T; n++) pos[n] = (int32_t)(n % T);
  a.tokens = upload_ints(tokens, "a batch's tokens");
  a.targets = upload_ints(targets, "a batch's tokens");
  a.pos = upload_ints(pos, "a batch's tokens");
}

void Model::run_forward(Activations& a, bool keep_layers) {
  const int64_t N = a.B * a.T, C = cfg.hidden;
  const float eps = (float)cfg.eps;
  a.recompute = !keep_layers;
  a.layers.resize(cfg.layers);
  // The residual stream: layer l reads x_in and writes the next layer's x_in (x_final at the end).
  Buffer tmp = scratch(N * C, "a batch's activations"), ln = scratch(N * C, "a batch's activations"),
         h = scratch(N * cfg.inter, "a batch's activations");
  const LayerScratch work{tmp.f(), ln.f(), h.f()};
  a.layers[0].x_in = scratch(N * C, "a batch's activations");
  be().embedding_forward(a.layers[0].x_in.f(), a.tokens.as<int32_t>(), embed.data.f(), N, C);
  for (int64_t l = 0; l < cfg.layers; l++) {
    LayerActs& s = a.layers[l];
    Buffer& next = l + 1 < cfg.layers ? a.layers[l + 1].x_in : a.x_final;
    next = scratch(N * C, "a batch's activations");
    layer_forward(a, l, s, next.f(), work);
    if (!keep_layers) {
      Buffer x_in = std::move(s.x_in);
      s = LayerActs();
      s.x_in = std::move(x_in);
    }
  }
  tmp.reset(), ln.reset(), h.reset();
  a.lnf = scratch(N * C, "a batch's activations"), a.rstdf = scratch(N, "a batch's activations");
  be().rmsnorm_forward(a.lnf.f(), a.rstdf.f(), a.x_final.f(), norm.data.f(), N, C, eps);
}

void Model::layer_forward(const Activations& a, int64_t l, LayerActs& s, float* out, const LayerScratch& w) {
  Backend& be = this->be();
  const int64_t N = a.B * a.T, C = cfg.hidden, Q = cfg.heads * cfg.head_dim, K = cfg.kv_heads * cfg.head_dim,
                F = cfg.inter, H = cfg.heads, KV = cfg.kv_heads, D = cfg.head_dim;
  const float eps = (float)cfg.eps;
  const RopeTable& rt = rope(a.T);
  const int32_t* pos = a.pos.as<int32_t>();
  Layer& L = layers[l];
  auto buf = [&](int64_t n) { return scratch(n, "a batch's activations"); };
  float *tmp = w.tmp, *ln = w.ln;
  s.rstd1 = buf(N);
  be.rmsnorm_forward(ln, s.rstd1.f(), s.x_in.f(), L.ln1.data.f(), N, C, eps);
  s.q = buf(N * Q), s.k = buf(N * K), s.v = buf(N * K);
  // Qwen3 projects into q_raw and k_raw, then RMS-normalises every head (N·H and N·KV rows of D) into q and k.
  if (cfg.qk_norm) s.q_raw = buf(N * Q), s.k_raw = buf(N * K), s.rstd_q = buf(N * H), s.rstd_k = buf(N * KV);
  L.q.forward(be, cfg.qk_norm ? s.q_raw.f() : s.q.f(), ln, N, &s.s[0], GemmMode::Train);
  L.k.forward(be, cfg.qk_norm ? s.k_raw.f() : s.k.f(), ln, N, &s.s[1], GemmMode::Train);
  L.v.forward(be, s.v.f(), ln, N, &s.s[2], GemmMode::Train);
  if (cfg.qk_norm) {
    be.rmsnorm_forward(s.q.f(), s.rstd_q.f(), s.q_raw.f(), L.q_norm.data.f(), N * H, D, eps);
    be.rmsnorm_forward(s.k.f(), s.rstd_k.f(), s.k_raw.f(), L.k_norm.data.f(), N * KV, D, eps);
  }
  be.rope(s.q.f(), pos, N, H, D, rt.cos.f(), rt.sin.f(), false);
  be.rope(s.k.f(), pos, N, KV, D, rt.cos.f(), rt.sin.f(), false);
  s.att = buf(be.attention_saved(a.B, a.T, H)), s.ao = buf(N * Q);
  be.attention_forward(s.ao.f(), s.att.f(), s.q.f(), s.k.f(), s.v.f(), a.B, a.T, H, KV, D);
  L.o.forward(be, tmp, s.ao.f(), N, &s.s[3], GemmMode::Train);
  s.x_mid = buf(N * C);
  be.add(s.x_mid.f(), s.x_in.f(), tmp, N * C);
  s.rstd2 = buf(N);
  be.rmsnorm_forward(ln, s.rstd2.f(), s.x_mid.f(), L.ln2.data.f(), N, C, eps);
  s.g = buf(N * F), s.u = buf(N * F);
  L.gate.forward(be, s.g.f(), ln, N, &s.s[4], GemmMode::Train);
  L.up.forward(be, s.u.f(), ln, N, &s.s[5], GemmMode::Train);
  be.swiglu_forward(w.h, s.g.f(), s.u.f(), N * F);
  L.down.forward(be, tmp, w.h, N, &s.s[6], GemmMode::Train);
  be.add(out, s.x_mid.f(), tmp, N * C);
}

void Model::forward(const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& logits) {
  check_tokens(tokens, B * T, "tokens");
  acts_.reset();
  Activations a;
  a.B = B, a.T = T;
  std::vector<int32_t> tok(tokens, tokens + B * T), targets(B * T, -1);
  setup_batch(a, tok, targets, false);
  run_forward(a, false);
  // The caller asked for all of them.
  be().check_memory(4.0 * (double)(B * T) * cfg.vocab,
                    "the logits of a batch of " + std::to_string(B) + " x " + std::to_string(T) + " tokens");
  Buffer all = scratch(B * T * cfg.vocab, "a batch's logits");
  head_logits(be(), all.f(), a.lnf.f(), 0, B * T, cfg.tied ? embed : lm_head, cfg.hidden, cfg.vocab);
  logits = read(all, B * T * cfg.vocab);
}

void Model::logprobs(const int32_t* tokens, int64_t B, int64_t T, const int32_t* lengths, float* logprob,
                     float* entropy, bool keep) {
  if (T < 2) throw std::runtime_error("seqLen must be at least 2 to have a next token");
  for (int64_t b = 0; lengths && b < B; b++)
    if (lengths[b] < 1 || lengths[b] > T)
      throw std::runtime_error("lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                               " is out of range [1, " + std::to_string(T) + "]");
  acts_.reset();
  // Padding past a sequence's length may hold anything; it is read as token 0 and never scored.
  std::vector<int32_t> tok(tokens, tokens + B * T), targets(B * T, -1);
  for (int64_t b = 0; b < B; b++) {
    int64_t len = lengths ? lengths[b] : T;
    for (int64_t t = len; t < T; t++) tok[b * T + t] = 0;
    check_tokens(tok.data() + b * T, len, ("tokens of sequence " + std::to_string(b)).c_str());
    for (int64_t t = 0; t + 1 < len; t++) targets[b * T + t] = tok[b * T + t + 1];
  }
  auto a = std::make_unique<Activations>();
  a->B = B, a->T = T;
  // Only each layer's input outlives the layer when no backward follows or backward recomputes.
  const bool keep_layers = keep && !recompute;
  setup_batch(*a, tok, targets, keep_layers);
  run_forward(*a, keep_layers);
  const int64_t N = B * T, V = cfg.vocab, rc = head_chunk(N);
  Buffer lp = scratch(N, "a batch's log-probs"), ent = scratch(entropy ? N : 0, "a batch's log-probs");
  a->lse = scratch(N, "a batch's log-probs");
  Buffer logits = scratch(rc * V, "a batch's logits");
  const Param& head = cfg.tied ? embed : lm_head;
  for (int64_t lo = 0; lo < N; lo += rc) {
    int64_t n = std::min(rc, N - lo);
    head_logits(be(), logits.f(), a->lnf.f(), lo, n, head, cfg.hidden, V);
    be().logprob_forward(lp.f() + lo, entropy ? ent.f() + lo : nullptr, a->lse.f() + lo, logits.f(),
                         a->targets.as<int32_t>() + lo, n, V);
  }
  logits.reset();
  std::vector<float> lph = read(lp, N), enth = entropy ? read(ent, N) : std::vector<float>();
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < T; t++) {
      logprob[b * (T - 1) + t] = lph[b * T + t];
      if (entropy) entropy[b * (T - 1) + t] = enth[b * T + t];
    }
  if (keep) acts_ = std::move(a);
}

void Model::backward(const float* dlogprob) {
  if (frozen_) throw std::runtime_error("backward: the model is frozen (freeze()), nothing of it trains");
  if (!acts_) throw std::runtime_error("backward needs a logprobs call on the batch first (none is pending)");
  ensure_gradients();
  std::unique_ptr<Activations> keep = std::move(acts_);  // freed on return, error or not
  Activations& a = *keep;
  Backend& be = this->be();
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
  Buffer wd = scratch(N, "a batch's gradients");
  be.upload(wd.get(), w.data(), (size_t)N * 4);
  auto buf = [&](int64_t n) { return scratch(n, "a batch's gradients"); };
  // The head, a chunk of rows at a time: the logits again, dlogits in their place, then that
  // chunk's rows of dlnf and its share of the head's gradient. A chunk with no weight on any row
  // (a prompt, padding) has zero dlnf and adds nothing, so it is not computed.
  // dln: the head's d lnf, then each layer's d ln2 and d ln1.
  Buffer dln = buf(N * C), dx = buf(N * C);
  be.zero(dx.get(), dx.bytes());
  Param& head = cfg.tied ? embed : lm_head;
  const int64_t rc = head_chunk(N);
  Buffer dlogits = buf(rc * V);
  for (int64_t lo = 0; lo < N; lo += rc) {
    int64_t n = std::min(rc, N - lo);
    if (std::all_of(w.begin() + lo, w.begin() + lo + n, [](float x) { return x == 0.0f; })) {
      be.zero(dln.f() + lo * C, (size_t)(n * C) * 4);
      continue;
    }
    head_logits(be, dlogits.f(), a.lnf.f(), lo, n, head, C, V);
    be.logprob_backward(dlogits.f(), dlogits.f(), a.lse.f() + lo, a.targets.as<int32_t>() + lo, wd.f() + lo, n, V);
    be.gemm(n, C, V, 1.0f, rows(dlogits.f(), V), head.weight().as_is(C), false, dln.f() + lo * C, C, nullptr,
            GemmMode::Train);
    if (head.g())
      be.gemm(V, C, n, 1.0f, {dlogits.f(), DType::F32, V, true}, rows(a.lnf.f() + lo * C, C), true, head.g(), C,
              nullptr, GemmMode::Train);
  }
  dlogits.reset();
  be.rmsnorm_backward(dx.f(), norm.g(), dln.f(), a.x_final.f(), norm.data.f(), a.rstdf.f(), N, C);
  const RopeTable& rt = rope(T);
  const int32_t* pos = a.pos.as<int32_t>();
  const float eps = (float)cfg.eps;
  // ln and h: the norms' outputs and silu(g) * u, computed again per layer (not kept by forward).
  // dg and du take the place of g and u, which nothing reads after swiglu_backward.
  Buffer ln = buf(N * C), h = buf(N * F), dh = buf(N * F), dq = buf(N * Q), dk = buf(N * K), dv = buf(N * K),
         dao = buf(N * Q);
  Buffer dq_raw = buf(cfg.qk_norm ? N * Q : 0), dk_raw = buf(cfg.qk_norm ? N * K : 0);
  // With recompute, each layer's forward runs again from its input (the same ops on the same
  // values: the same activations, bit for bit); its output is not needed again.
  Buffer redo_out = buf(a.recompute ? N * C : 0), redo_tmp = buf(a.recompute ? N * C : 0);
  const LayerScratch work{redo_tmp.f(), ln.f(), h.f()};
  for (int64_t l = cfg.layers - 1; l >= 0; l--) {
    Layer& L = layers[l];
    LayerActs& s = a.layers[l];
    if (a.recompute) layer_forward(a, l, s, redo_out.f(), work);
    // MLP: x_out = x_mid + down(silu(gate(ln2)) * up(ln2))
    be.rmsnorm_forward(ln.f(), s.rstd2.f(), s.x_mid.f(), L.ln2.data.f(), N, C, eps);
    be.swiglu_forward(h.f(), s.g.f(), s.u.f(), N * F);
    L.down.backward(be, dh.f(), false, dx.f(), h.f(), N, s.s[6]);
    float *dg = s.g.f(), *du = s.u.f();
    be.swiglu_backward(dg, du, dh.f(), s.g.f(), s.u.f(), N * F);
    L.gate.backward(be, dln.f(), false, dg, ln.f(), N, s.s[4]);
    L.up.backward(be, dln.f(), true, du, ln.f(), N, s.s[5]);
    be.rmsnorm_backward(dx.f(), L.ln2.g(), dln.f(), s.x_mid.f(), L.ln2.data.f(), s.rstd2.f(), N, C);
    // Attention: x_mid = x_in + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))), q and k head-normalised in Qwen3
    L.o.backward(be, dao.f(), false, dx.f(), s.ao.f(), N, s.s[3]);
    be.attention_backward(dq.f(), dk.f(), dv.f(), dao.f(), s.ao.f(), s.att.f(), s.q.f(), s.k.f(), s.v.f(), B, T, H, KV,
                          D);
    be.rope(dq.f(), pos, N, H, D, rt.cos.f(), rt.sin.f(), true);
    be.rope(dk.f(), pos, N, KV, D, rt.cos.f(), rt.sin.f(), true);
    if (cfg.qk_norm) {  // Qwen3: q = RMSNorm_head(q_raw), k likewise (the op adds into dx: zeroed first)
      be.zero(dq_raw.get(), dq_raw.bytes()), be.zero(dk_raw.get(), dk_raw.bytes());
      be.rmsnorm_backward(dq_raw.f(), L.q_norm.g(), dq.f(), s.q_raw.f(), L.q_norm.data.f(), s.rstd_q.f(), N * H, D);
      be.rmsnorm_backward(dk_raw.f(), L.k_norm.g(), dk.f(), s.k_raw.f(), L.k_norm.data.f(), s.rstd_k.f(), N * KV, D);
    }
    be.rmsnorm_forward(ln.f(), s.rstd1.f(), s.x_in.f(), L.ln1.data.f(), N, C, eps);
    L.q.backward(be, dln.f(), false, cfg.qk_norm ? dq_raw.f() : dq.f(), ln.f(), N, s.s[0]);
    L.k.backward(be, dln.f(), true, cfg.qk_norm ? dk_raw.f() : dk.f(), ln.f(), N, s.s[1]);
    L.v.backward(be, dln.f(), true, dv.f(), ln.f(), N, s.s[2]);
    be.rmsnorm_backward(dx.f(), L.ln1.g(), dln.f(), s.x_in.f(), L.ln1.data.f(), s.rstd1.f(), N, C);
    s = LayerActs();  // this layer's activations go as soon as its backward is done
  }
  if (embed.g()) be.embedding_backward(embed.g(), dx.f(), a.tokens.as<int32_t>(), N, C);
}

}  // namespace temper
