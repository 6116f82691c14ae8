// Sampling with a paged KV cache and continuous batching. Every running completion holds a slot
// (a row of the cache's block table) and the blocks its positions fill; a step runs the rows of
// all of them through the decoder at once (one product per projection), whatever their lengths,
// because each row carries its own slot and position. A prompt is prefilled once into blocks its
// samples share; the scheduler (scheduler.h) hands out blocks as completions grow, copies a
// shared block when a sample first writes into it, and admits waiting prompts as slots and blocks
// free up. The backend decides how many slots and blocks there are and how much a step prefills:
// on the CPU every completion at once (prefill, then decode), on a device as many as fit.
#include <algorithm>
#include <set>
#include <stdexcept>

#include "model/activations.h"
#include "model/kv_cache.h"
#include "model/profile.h"
#include "model/rng.h"
#include "model/scheduler.h"

namespace temper {

// Runs a step's rows (token tok[r] of slot slot[r] at position pos[r]) through the decoder,
// appending their keys and values to the cache; logits[want.size(), V] for the rows in want.
// Without adapters each layer is six passes: RMSNorm and q/k/v as one (Qwen3: then each head of q
// and k normalised), rope with the cache write, attention, o_proj adding into the residual,
// RMSNorm and gate/up with SwiGLU, down adding into the residual.
void Model::infer_rows(const StepPlan& st, KvCache& kv, float* logits, StepProfile& prof) {
  Backend& be = this->be();
  const int64_t R = (int64_t)st.tok.size(), W = (int64_t)st.want.size(), C = cfg.hidden,
                Q = cfg.heads * cfg.head_dim, K = cfg.kv_heads * cfg.head_dim, F = cfg.inter, H = cfg.heads,
                KV = cfg.kv_heads, D = cfg.head_dim;
  const float eps = (float)cfg.eps;
  const RopeTable& rt = rope(kv.layer(0).cap);
  auto buf = [&](int64_t n) { return scratch(n, "a decode step"); };
  Buffer tok = upload_ints(st.tok, "a decode step"), slot = upload_ints(st.slot, "a decode step"),
         pos = upload_ints(st.pos, "a decode step");
  Buffer want(be, (size_t)W * 8, "a decode step");
  be.upload(want.get(), st.want.data(), (size_t)W * 8);
  Buffer x = buf(R * C), ln = buf(R * C), q = buf(R * Q), k = buf(R * K), v = buf(R * K), ao = buf(R * Q),
         tmp = buf(R * C), g = buf(R * F), u = buf(R * F);
  be.embedding_forward(x.f(), tok.as<int32_t>(), embed.data.f(), R, C);
  prof.mark(StepProfile::Embed);
  auto plain = [](const Linear& p) { return !p.lora; };
  auto bias = [](const Linear& p) { return p.b.exists() ? p.b.data.f() : nullptr; };
  // out (+)= p(in): the projection's own pass, through tmp when it adds into the residual.
  auto linear = [&](const Linear& p, float* out, const float* in, bool add) {
    p.forward(be, add ? tmp.f() : out, in, R, nullptr, GemmMode::Decode);
    if (add) be.add(out, out, tmp.f(), R * p.out);
  };
  for (int64_t l = 0; l < cfg.layers; l++) {
    Layer& L = layers[l];
    if (plain(L.q) && plain(L.k) && plain(L.v)) {
      be.project(x.f(), R, C, L.ln1.data.f(), eps,
                 {{q.f(), L.q.w.weight(), bias(L.q), Q, false},
                  {k.f(), L.k.w.weight(), bias(L.k), K, false},
                  {v.f(), L.v.w.weight(), bias(L.v), K, false}},
                 Epilogue::None);
    } else {
      be.rmsnorm_forward(ln.f(), nullptr, x.f(), L.ln1.data.f(), R, C, eps);
      linear(L.q, q.f(), ln.f(), false);
      linear(L.k, k.f(), ln.f(), false);
      linear(L.v, v.f(), ln.f(), false);
    }
    prof.mark(StepProfile::Qkv);
    if (cfg.qk_norm) {  // Qwen3: every head of q and k RMS-normalised before RoPE (in place)
      be.rmsnorm_forward(q.f(), nullptr, q.f(), L.q_norm.data.f(), R * H, D, eps);
      be.rmsnorm_forward(k.f(), nullptr, k.f(), L.k_norm.data.f(), R * KV, D, eps);
    }
    const KvLayer cache = kv.layer(l);
    be.rope_kv_write(q.f(), k.f(), v.f(), slot.as<int32_t>(), pos.as<int32_t>(), R, H, KV, D, rt.cos.f(), rt.sin.f(),
                     cache);
    prof.mark(StepProfile::RopeKv);
    be.attention_decode(ao.f(), q.f(), cache, slot.as<int32_t>(), pos.as<int32_t>(), R, H, KV, D);
    prof.mark(StepProfile::Attention);
    if (plain(L.o)) be.project(ao.f(), R, Q, nullptr, 0, {{x.f(), L.o.w.weight(), bias(L.o), C, true}}, Epilogue::None);
    else linear(L.o, x.f(), ao.f(), true);
    prof.mark(StepProfile::OProj);
    if (plain(L.gate) && plain(L.up)) {
      be.project(x.f(), R, C, L.ln2.data.f(), eps,
                 {{g.f(), L.gate.w.weight(), bias(L.gate), F, false}, {u.f(), L.up.w.weight(), bias(L.up), F, false}},
                 Epilogue::SwiGLU);
    } else {
      be.rmsnorm_forward(ln.f(), nullptr, x.f(), L.ln2.data.f(), R, C, eps);
      linear(L.gate, g.f(), ln.f(), false);
      linear(L.up, u.f(), ln.f(), false);
      be.swiglu_forward(g.f(), g.f(), u.f(), R * F);
    }
    prof.mark(StepProfile::GateUp);
    if (plain(L.down)) be.project(g.f(), R, F, nullptr, 0, {{x.f(), L.down.w.weight(), bias(L.down), C, true}}, Epilogue::None);
    else linear(L.down, x.f(), g.f(), true);
    prof.mark(StepProfile::Down);
  }
  Buffer xs = buf(W * C), lns = buf(W * C);
  be.gather_rows(xs.f(), x.f(), want.as<int64_t>(), W, C);
  be.rmsnorm_forward(lns.f(), nullptr, xs.f(), norm.data.f(), W, C, eps);
  const Param& head = cfg.tied ? embed : lm_head;
  be.project(lns.f(), W, C, nullptr, 0, {{logits, head.weight(), nullptr, cfg.vocab, false}}, Epilogue::None);
  prof.mark(StepProfile::Head);
}

std::vector<Completion> Model::generate(const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& sp) {
  Backend& be = this->be();
  const int64_t P = (int64_t)prompts.size(), S = P * sp.n, V = cfg.vocab;
  if (P == 0) throw std::runtime_error("prompts is empty");
  std::vector<int64_t> lens;
  int64_t longest = 0, prompt_rows = 0;
  for (int64_t i = 0; i < P; i++) {
    if (prompts[i].empty()) throw std::runtime_error("prompts[" + std::to_string(i) + "] is empty");
    check_tokens(prompts[i].data(), (int64_t)prompts[i].size(), ("prompts[" + std::to_string(i) + "]").c_str());
    lens.push_back((int64_t)prompts[i].size());
    longest = std::max(longest, lens.back());
    prompt_rows += lens.back();
  }
  acts_.reset();
  const int64_t B = be.kv_block(), width = (longest + sp.max_new + B - 1) / B, cap = width * B;
  if (cap > (int64_t)INT32_MAX) throw std::runtime_error("prompt plus maxNewTokens is too long");
  // A step's row holds its activations (residual, norm, q/k/v, attention out, gate/up); only the
  // rows that sample hold a row of logits: a running completion's decode row, a prompt's last row.
  const double row_bytes = 4.0 * (4.0 * cfg.hidden + 2.0 * cfg.heads * cfg.head_dim + 3.0 * cfg.inter);
  const double block_bytes = KvCache::block_bytes(be.kv_dtype(), B, cfg.layers, cfg.kv_heads, cfg.head_dim);
  int64_t worst_blocks = 0;
  for (int64_t len : lens) worst_blocks += sp.n * ((len + sp.max_new + B - 1) / B);
  const Backend::Batching plan =
      be.batching(S, sp.n, prompt_rows, longest, block_bytes, worst_blocks, width, row_bytes + 4.0 * V, row_bytes,
                  "generating " + std::to_string(S) + " completions of up to " + std::to_string(longest + sp.max_new) +
                      " tokens");
  BatchScheduler sched(lens, sp.n, plan.slots, sp.max_new, plan.prefill_rows, plan.blocks, B);
  std::vector<Completion> out(S);
  std::vector<Rng> rngs;
  for (int64_t i = 0; i < P; i++)
    for (int64_t j = 0; j < sp.n; j++) {
      const bool own = !sp.prompt_seeds.empty();
      uint64_t s = own ? sp.prompt_seeds[i] : sp.seed;
      const uint64_t at = own ? 0 : (uint64_t)i;
      rngs.emplace_back(splitmix64(s) ^ (at * 0xD1B54A32D192ED03ull) ^ ((uint64_t)j * 0x8CB92BA72F3D8DD7ull));
    }
  std::set<int32_t> stop(sp.stop.begin(), sp.stop.end());
  StepProfile prof;
  if (!sched.finished()) {
    KvCache kv(be, cfg.layers, sched.blocks(), plan.slots, cap, cfg.kv_heads, cfg.head_dim);
    prof.restart();
    while (!sched.finished()) {
      StepPlan step = sched.next(prompts);
      if (step.empty()) throw std::runtime_error("generate: the scheduler stalled (no slot could be filled)");
      const int64_t W = (int64_t)step.want.size(), picks = (int64_t)step.pick_seq.size();
      prof.step_kind(step.tok.size() != step.want.size());
      for (const BlockCopy& cp : step.copies) kv.copy_block(cp.from, cp.to, cp.length);
      kv.set_table(sched.table());
      Buffer logits = scratch(W * V, "a decode step's logits");
      prof.mark(StepProfile::Schedule);
      infer_rows(step, kv, logits.f(), prof);
      // Each completion draws from its own stream, so its tokens do not depend on the others'.
      std::vector<double> u(picks, 0.0);
      if (sp.temperature > 0)
        for (int64_t i = 0; i < picks; i++) u[i] = rngs[step.pick_seq[i]].uniform();
      Buffer row_of(be, (size_t)picks * 8, "sampling"), draws(be, (size_t)picks * 8, "sampling"),
          picked(be, (size_t)picks * 4, "sampling"), lp(be, (size_t)picks * 4, "sampling");
      be.upload(row_of.get(), step.pick_row.data(), (size_t)picks * 8);
      be.upload(draws.get(), u.data(), (size_t)picks * 8);
      be.sample(picked.as<int32_t>(), lp.f(), logits.f(), row_of.as<int64_t>(), draws.as<double>(), picks, V,
                sp.temperature, sp.top_k, sp.top_p);
      std::vector<int32_t> tokens(picks);
      std::vector<float> logprobs(picks);
      be.download(tokens.data(), picked.get(), (size_t)picks * 4);
      be.download(logprobs.data(), lp.get(), (size_t)picks * 4);
      for (int64_t i = 0; i < picks; i++) out[step.pick_seq[i]].logprobs.push_back(logprobs[i]);
      prof.mark(StepProfile::Sample);
      sched.commit(step, tokens, stop);
      prof.count_step();
    }
  }
  if (sched.free_blocks() != sched.blocks())
    throw std::runtime_error("generate: " + std::to_string(sched.blocks() - sched.free_blocks()) +
                             " KV-cache blocks were not given back");
  for (int64_t s = 0; s < S; s++) {
    out[s].tokens = sched.tokens(s);
    out[s].finish = sched.finish(s);
  }
  return out;
}

}  // namespace temper
