// The CUDA backend's model, run on the emulator (cuda_emu.h) against the CPU backend on small
// random models: log-probs and entropy, gradients, clipped AdamW steps, greedy and sampled
// generation with continuous batching, LoRA and DoRA, tied and untied heads. fp32 mode must
// match the CPU to fp32 rounding; bf16 mode to what rounding the operands to bf16 explains.
// Build and run: bash build.sh (README.md lists what each case reaches and the errors measured).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "cpu/model.h"
#include "cuda/cuda_model.h"
#include "cuda_emu.h"

using namespace temper;

static int failures = 0;

static double rel(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double n = 0, d = 0;
  for (size_t i = 0; i < a.size(); i++) n += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), d += (double)b[i] * b[i];
  return std::sqrt(n) / std::max(std::sqrt(d), 1e-30);
}

static void expect(const std::string& what, double err, double tol) {
  bool ok = err < tol;  // NaN fails
  std::printf("  %-64s %.3e (tol %.0e) %s\n", what.c_str(), err, tol, ok ? "ok" : "FAIL");
  if (!ok) failures++;
}

static void expect_count(const std::string& what, int same, int of, int need) {
  bool ok = same >= need;
  std::printf("  %-64s %d/%d (need %d) %s\n", what.c_str(), same, of, need, ok ? "ok" : "FAIL");
  if (!ok) failures++;
}

// Shapes chosen so that small products still reach every kernel path: hidden 64 is a whole
// number of GEMM tiles, inter 260 and vocab 97 are not (nor multiples of 8, so vector loads fall
// back and K ends mid-chunk), K = 260 is deep enough for split-K in decode, head_dim 40 uses a
// second register per lane in attention with some lanes idle, q/o widths 160 are 2.5 tiles of 64.
static Config tiny(bool tied) {
  Config c;
  c.vocab = 97, c.hidden = 64, c.inter = 260, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 40;
  c.max_pos = 512, c.rope_theta = 10000, c.eps = 1e-6, c.tied = tied;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  return c;
}

enum class Adapters { None, LoRA, DoRA };
struct Case {
  const char* name;
  bool fp32, tied;
  Adapters adapters;
  int sms;  // multiprocessors the emulated device reports: 1 sends every product to 128x128 tiles
};

static void run(const Case& k) {
  const auto t0 = std::chrono::steady_clock::now();
  std::printf("%s\n", k.name);
  emu::sm_count = k.sms;
  // Tolerances (relative, in the 2-norm). fp32: the two backends sum in different orders, so
  // errors are a few fp32 ulps (1.2e-7) amplified by the depth of the network. bf16: every
  // product rounds both operands to 8 bits of mantissa (relative error up to 2^-9 = 2e-3 each),
  // and the errors of the 2 layers add; the tolerances are a few such roundings.
  const double tl = k.fp32 ? 2e-5 : 3e-3,  // log-probs and entropy of ~ -log(97) = -4.6
      tlogit = k.fp32 ? 4e-5 : 2e-2,       // logits, ~0.1 in size: the rounding is relatively larger
      tg = k.fp32 ? 2e-4 : 8e-2;           // gradients: through every backward product
  Config c = tiny(k.tied);
  Model cpu(c, 1), host(c, 1);
  cpu.init_random(3), host.init_random(3);
  if (k.adapters != Adapters::None) {
    AdapterSpec s;
    s.r = 4, s.alpha = 8, s.dora = k.adapters == Adapters::DoRA, s.targets = {"q_proj", "v_proj", "o_proj", "down_proj"};
    cpu.add_adapters(s, 1), host.add_adapters(s, 1);
    // B starts at zero; move it so the adapters matter.
    for (Model* m : {&cpu, &host})
      for (auto& n : m->adapter_params())
        for (size_t i = 0; i < n.t->data.size(); i++) n.t->data[i] += 0.05f * std::sin(0.7f * (float)i + (float)n.t->data.size());
  }
  CudaOptions o;
  o.fp32 = k.fp32;
  o.max_slots = 2;
  auto dev = make_cuda_model(host, o);
  dev->upload();

  // Two sequences, one padded: T = 37 is two attention tiles, the second partial.
  const int64_t B = 2, T = 37;
  std::vector<int32_t> tokens(B * T), lengths = {37, 20};
  for (int64_t i = 0; i < B * T; i++) tokens[i] = (int32_t)((i * 31 + 7) % c.vocab);
  std::vector<float> a(B * (T - 1)), b(a.size()), ea(a.size()), eb(a.size()), w(a.size());
  for (size_t i = 0; i < w.size(); i++) w[i] = 0.1f * std::cos((float)i);
  cpu.logprobs(tokens.data(), B, T, lengths.data(), a.data(), ea.data(), true);
  dev->logprobs(tokens.data(), B, T, lengths.data(), b.data(), eb.data(), true);
  expect("logprobs", rel(b, a), tl);
  expect("entropy", rel(eb, ea), tl);
  cpu.backward(w.data());
  dev->backward(w.data());
  dev->download();
  double worst = 0;
  std::string worst_name;
  auto ct = cpu.trainable(), ht = host.trainable();
  for (size_t i = 0; i < ct.size(); i++) {
    double e = rel(ht[i].t->grad, ct[i].t->grad);
    if (!(e <= worst)) worst = e, worst_name = ct[i].name;
  }
  expect("gradients (worst: " + worst_name + ")", worst, tg);

  // AdamW's first step moves every weight by lr * g / |g|, whatever |g| is: a component near
  // zero whose sign bf16 rounding flips moves its weight by 2 lr (measured: one flip in a 64-wide
  // bias is a 13% error). Stepping from each backend's own gradient would measure that, not the
  // optimizer, so both step from the CPU's; two steps, so the moments carry over.
  for (size_t i = 0; i < ct.size(); i++) ht[i].t->grad = ct[i].t->grad;
  dev->upload();
  double worst_norm = 0;
  for (int s = 0; s < 2; s++) {
    double na = cpu.step(1e-2, 0.9, 0.999, 1e-8, 0.01, 0.05), nb = dev->step(1e-2, 0.9, 0.999, 1e-8, 0.01, 0.05);
    worst_norm = std::max(worst_norm, std::fabs(nb - na) / na);
  }
  expect("gradient norm (clipping)", worst_norm, 1e-6);
  dev->download();
  worst = 0;
  for (size_t i = 0; i < ct.size(); i++) {
    const Tensor &x = *ht[i].t, &y = *ct[i].t;
    worst = std::max({worst, rel(x.data, y.data), rel(x.m, y.m), rel(x.v, y.v)});
  }
  expect("weights and moments after two clipped AdamW steps", worst, 1e-6);
  std::vector<float> fa, fb;
  cpu.forward(tokens.data(), B, T, fa);
  dev->forward(tokens.data(), B, T, fb);
  expect("logits after the steps", rel(fb, fa), tlogit);

  // Greedy: the long prompt takes decode attention past one 128-position chunk.
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {5}, {9, 8, 7, 6, 5, 4, 3}, {}};
  for (int i = 0; i < 130; i++) prompts[3].push_back((i * 13 + 5) % (int)c.vocab);
  SamplingParams sp;
  sp.max_new = 6, sp.temperature = 0;
  auto ga = cpu.generate(prompts, sp), gb = dev->generate(prompts, sp);
  int same = 0;
  double lpe = 0;
  for (size_t i = 0; i < ga.size(); i++)
    if (ga[i].tokens == gb[i].tokens) same++, lpe = std::max(lpe, rel(gb[i].logprobs, ga[i].logprobs));
  // bf16 can flip the argmax of this near-uniform model's logits, so there a count is reported,
  // and the log-probs are compared where the tokens agree.
  expect_count("greedy completions equal to the CPU's", same, (int)ga.size(), k.fp32 ? (int)ga.size() : 0);
  expect("greedy log-probs (completions that agree)", lpe, tl);
  sp.temperature = 0.9, sp.top_p = 0.9, sp.top_k = 20, sp.n = 2, sp.seed = 4, sp.stop = {3};
  ga = cpu.generate(prompts, sp), gb = dev->generate(prompts, sp);  // 8 completions on 2 slots
  same = 0, lpe = 0;
  for (size_t i = 0; i < ga.size(); i++)
    if (ga[i].tokens == gb[i].tokens && ga[i].finish == gb[i].finish)
      same++, lpe = std::max(lpe, rel(gb[i].logprobs, ga[i].logprobs));
  // A draw that lands within rounding of a boundary between two tokens may go either way.
  expect_count("sampled completions (2 slots for 8) equal to the CPU's", same, (int)ga.size(),
               k.fp32 ? (int)ga.size() - 1 : 0);
  expect("sampled log-probs (completions that agree)", lpe, tl);
  std::printf("  (%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  const Case cases[] = {
      {"fp32", true, true, Adapters::None, 4},
      {"bf16, untied head", false, false, Adapters::None, 4},
      {"fp32, LoRA", true, true, Adapters::LoRA, 4},
      {"fp32, DoRA, untied head", true, false, Adapters::DoRA, 4},
      {"bf16, LoRA, 1 SM (128x128 tiles only)", false, true, Adapters::LoRA, 1},
      {"bf16, DoRA", false, true, Adapters::DoRA, 4},
  };
  for (const Case& k : cases) run(k);
  std::printf(failures ? "emulated parity: %d FAILED" : "emulated parity: all passed", failures);
  std::printf(" (%.0f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // The CPU backend keeps released buffers in a process-wide cache; give them back, or a
  // sanitizer build's leak check reports every one of them.
  trim_buffer_cache();
  return failures ? 1 : 0;
}
