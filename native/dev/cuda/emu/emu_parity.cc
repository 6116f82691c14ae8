// The one model (src/model) on the CUDA backend, run on the emulator (cuda_emu.h), against the
// same model on the CPU backend, on small random models: log-probs and entropy, gradients,
// clipped AdamW steps, greedy and sampled generation with continuous batching, LoRA and DoRA,
// tied and untied heads, merged export. fp32 mode must match the CPU to fp32 rounding; bf16 mode
// to what rounding the operands to bf16 explains. Then a few ops on their own where the model
// does not reach them (a bf16 weight in the CPU's GEMM). Build and run: bash build.sh
// (README.md lists what each case reaches and the errors measured).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "backend/backends.h"
#include "cuda_emu.h"
#include "model/model.h"

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
  CudaOptions o;
  o.fp32 = k.fp32;
  o.max_slots = 2;
  Model cpu(c, make_cpu_backend(1)), dev(c, make_cuda_backend(o));
  cpu.init_random(3), dev.init_random(3);
  if (k.adapters != Adapters::None) {
    AdapterSpec s;
    s.r = 4, s.alpha = 8, s.dora = k.adapters == Adapters::DoRA, s.targets = {"q_proj", "v_proj", "o_proj", "down_proj"};
    cpu.add_adapters(s, 1), dev.add_adapters(s, 1);
    // B starts at zero; move it so the adapters matter.
    for (Model* m : {&cpu, &dev})
      for (auto& n : m->adapter_params()) {
        std::vector<float> x = m->read(n.t->data, n.t->numel());
        for (size_t i = 0; i < x.size(); i++) x[i] += 0.05f * std::sin(0.7f * (float)i + (float)x.size());
        m->write(*n.t, [&](float* out) { std::copy(x.begin(), x.end(), out); });
      }
  }
  auto grads = [](Model& m) {
    std::vector<std::vector<float>> g;
    for (auto& n : m.trainable()) g.push_back(m.read(n.t->grad, n.t->numel()));
    return g;
  };

  // Two sequences, one padded: T = 37 is two attention tiles, the second partial.
  const int64_t B = 2, T = 37;
  std::vector<int32_t> tokens(B * T), lengths = {37, 20};
  for (int64_t i = 0; i < B * T; i++) tokens[i] = (int32_t)((i * 31 + 7) % c.vocab);
  std::vector<float> a(B * (T - 1)), b(a.size()), ea(a.size()), eb(a.size()), w(a.size());
  for (size_t i = 0; i < w.size(); i++) w[i] = 0.1f * std::cos((float)i);
  cpu.logprobs(tokens.data(), B, T, lengths.data(), a.data(), ea.data(), true);
  dev.logprobs(tokens.data(), B, T, lengths.data(), b.data(), eb.data(), true);
  expect("logprobs", rel(b, a), tl);
  expect("entropy", rel(eb, ea), tl);
  cpu.backward(w.data());
  dev.backward(w.data());
  std::vector<std::vector<float>> cg = grads(cpu), dg = grads(dev);
  auto ct = cpu.trainable(), dt = dev.trainable();
  double worst = 0;
  std::string worst_name;
  for (size_t i = 0; i < ct.size(); i++) {
    double e = rel(dg[i], cg[i]);
    if (!(e <= worst)) worst = e, worst_name = ct[i].name;
  }
  expect("gradients (worst: " + worst_name + ")", worst, tg);

  // AdamW's first step moves every weight by lr * g / |g|, whatever |g| is: a component near
  // zero whose sign bf16 rounding flips moves its weight by 2 lr (measured: one flip in a 64-wide
  // bias is a 13% error). Stepping from each backend's own gradient would measure that, not the
  // optimizer, so both step from the CPU's; two steps, so the moments carry over.
  for (size_t i = 0; i < ct.size(); i++) dev.be().upload(dt[i].t->grad.get(), cg[i].data(), cg[i].size() * 4);
  double worst_norm = 0;
  for (int s = 0; s < 2; s++) {
    double na = cpu.step(1e-2, 0.9, 0.999, 1e-8, 0.01, 0.05), nb = dev.step(1e-2, 0.9, 0.999, 1e-8, 0.01, 0.05);
    worst_norm = std::max(worst_norm, std::fabs(nb - na) / na);
  }
  expect("gradient norm (clipping)", worst_norm, 1e-6);
  worst = 0;
  for (size_t i = 0; i < ct.size(); i++) {
    const Param &x = *dt[i].t, &y = *ct[i].t;
    const int64_t n = y.numel();
    worst = std::max({worst, rel(dev.read(x.data, n), cpu.read(y.data, n)), rel(dev.read(x.m, n), cpu.read(y.m, n)),
                      rel(dev.read(x.v, n), cpu.read(y.v, n))});
  }
  expect("weights and moments after two clipped AdamW steps", worst, 1e-6);
  std::vector<float> fa, fb;
  cpu.forward(tokens.data(), B, T, fa);
  dev.forward(tokens.data(), B, T, fb);
  expect("logits after the steps", rel(fb, fa), tlogit);

  // Greedy: the long prompt takes decode attention past one 128-position chunk.
  std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {5}, {9, 8, 7, 6, 5, 4, 3}, {}};
  for (int i = 0; i < 130; i++) prompts[3].push_back((i * 13 + 5) % (int)c.vocab);
  SamplingParams sp;
  sp.max_new = 6, sp.temperature = 0;
  auto ga = cpu.generate(prompts, sp), gb = dev.generate(prompts, sp);
  int same = 0;
  double lpe = 0;
  for (size_t i = 0; i < ga.size(); i++)
    if (ga[i].tokens == gb[i].tokens) same++, lpe = std::max(lpe, rel(gb[i].logprobs, ga[i].logprobs));
  // bf16 can flip the argmax of this near-uniform model's logits, so there a count is reported,
  // and the log-probs are compared where the tokens agree.
  expect_count("greedy completions equal to the CPU's", same, (int)ga.size(), k.fp32 ? (int)ga.size() : 0);
  expect("greedy log-probs (completions that agree)", lpe, tl);
  sp.temperature = 0.9, sp.top_p = 0.9, sp.top_k = 20, sp.n = 2, sp.seed = 4, sp.stop = {3};
  ga = cpu.generate(prompts, sp), gb = dev.generate(prompts, sp);  // 8 completions on 2 slots
  same = 0, lpe = 0;
  for (size_t i = 0; i < ga.size(); i++)
    if (ga[i].tokens == gb[i].tokens && ga[i].finish == gb[i].finish)
      same++, lpe = std::max(lpe, rel(gb[i].logprobs, ga[i].logprobs));
  // A draw that lands within rounding of a boundary between two tokens may go either way.
  expect_count("sampled completions (2 slots for 8) equal to the CPU's", same, (int)ga.size(),
               k.fp32 ? (int)ga.size() - 1 : 0);
  expect("sampled log-probs (completions that agree)", lpe, tl);

  // The weights an adapter-free model would need (adapters merged on each backend), as exported.
  if (k.adapters != Adapters::None) {
    SafetensorsFile ea, eb;
    ea.what = "cpu export", eb.what = "cuda export";
    ea.bytes = cpu.export_weights(DType::F32, true), eb.bytes = dev.export_weights(DType::F32, true);
    parse_safetensors(ea), parse_safetensors(eb);
    double we = 0;
    for (size_t i = 0; i < ea.tensors.size(); i++) we = std::max(we, rel(to_f32(eb.tensors[i], eb.what), to_f32(ea.tensors[i], ea.what)));
    expect("merged export (worst tensor)", we, 1e-6);
  }
  std::printf("  (%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Ops the model does not reach on this backend pair: the CPU's GEMM with a bf16 weight (what
// frozen bf16 base weights will need) must equal its fp32 GEMM on the rounded weight, and the
// CUDA backend's must agree with it.
static void ops() {
  std::printf("ops\n");
  const int64_t M = 5, N = 37, K = 70;
  std::vector<float> x(M * K), w(N * K), wr(N * K), bias(N);
  std::vector<uint16_t> w16(N * K);
  for (int64_t i = 0; i < M * K; i++) x[i] = std::sin(0.3f * (float)i);
  for (int64_t i = 0; i < N * K; i++) {
    w[i] = std::cos(0.17f * (float)i);
    w16[i] = bf16_bits(w[i]);
    wr[i] = bf16_value(w16[i]);
  }
  for (int64_t i = 0; i < N; i++) bias[i] = 0.01f * (float)i;
  auto run = [&](Backend& be, const void* weight, DType dtype) {
    const size_t wbytes = (size_t)(N * K) * (dtype == DType::BF16 ? 2 : 4);
    Buffer bx(be, x.size() * 4, "x"), bw(be, wbytes, "w"), bb(be, bias.size() * 4, "bias"), by(be, (size_t)(M * N) * 4, "y");
    be.upload(bx.get(), x.data(), x.size() * 4), be.upload(bw.get(), weight, wbytes);
    be.upload(bb.get(), bias.data(), bias.size() * 4);
    be.gemm(M, N, K, 1.0f, {bx.get(), DType::F32, K, false}, Weight{bw.get(), dtype}.transposed(K), false, by.f(), N,
            bb.f(), GemmMode::Train);
    std::vector<float> y(M * N);
    be.download(y.data(), by.get(), y.size() * 4);
    return y;
  };
  auto cpu = make_cpu_backend(1);
  CudaOptions o;
  auto dev = make_cuda_backend(o);
  std::vector<float> ref = run(*cpu, wr.data(), DType::F32), got = run(*cpu, w16.data(), DType::BF16);
  expect("CPU gemm, bf16 weight = fp32 gemm of the rounded weight", rel(got, ref), 1e-30);
  expect("CUDA gemm, bf16 weight, against the CPU's", rel(run(*dev, w16.data(), DType::BF16), got), 3e-3);
}

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  ops();
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
  trim_host_cache();
  return failures ? 1 : 0;
}
