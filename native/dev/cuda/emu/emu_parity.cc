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
#include <map>
#include <string>

#include "backend/backends.h"
#include "cuda_emu.h"
#include "io/json.h"
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
// Qwen3: no biases, every head of q and k RMS-normalised, and head_dim 128 (Qwen3-0.6B's, the
// attention kernels' largest), so q is 512 wide on a hidden size of 64.
static Config tiny(bool tied, bool qwen3) {
  Config c;
  c.vocab = 97, c.hidden = 64, c.inter = 260, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 40;
  c.max_pos = 512, c.rope_theta = 10000, c.eps = 1e-6, c.tied = tied;
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  if (qwen3) c.head_dim = 128, c.qkv_bias = c.o_bias = c.mlp_bias = false, c.qk_norm = true;
  return c;
}

enum class Adapters { None, LoRA, DoRA };
struct Case {
  const char* name;
  bool fp32, tied;
  Adapters adapters;
  int sms;  // multiprocessors the emulated device reports: 1 sends every product to 128x128 tiles
  bool qwen3 = false;
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
  Config c = tiny(k.tied, k.qwen3);
  CudaOptions o;
  o.fp32 = k.fp32;
  o.max_slots = 2;
  Model cpu(c, make_cpu_backend(1)), dev(c, make_cuda_backend(o));
  cpu.init_random(3), dev.init_random(3);
  // Norm weights start at one; move the head norms so that their weights matter.
  for (Model* m : {&cpu, &dev})
    for (Layer& L : m->layers)
      for (Param* p : {&L.q_norm, &L.k_norm})
        if (p->exists())
          m->write(*p, [&](float* x) {
            for (int64_t i = 0; i < p->numel(); i++) x[i] = 1.0f + 0.3f * std::sin(0.9f * (float)i);
          });
  if (k.adapters != Adapters::None) {
    AdapterSpec s;
    s.r = 4, s.alpha = 8, s.dora = k.adapters == Adapters::DoRA, s.targets = {"q_proj", "v_proj", "o_proj", "down_proj"};
    if (k.qwen3) s.rslora = true, s.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
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

// Ops the model does not reach on this backend pair: the CPU's GEMM with a bf16 weight (what its
// bf16 precision reads) must equal its fp32 GEMM on the rounded weight to float rounding (its
// bf16 kernels sum in their own order, not OpenBLAS's), and the CUDA backend's must agree with it.
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
  expect("CPU gemm, bf16 weight = fp32 gemm of the rounded weight", rel(got, ref), 1e-6);
  expect("CUDA gemm, bf16 weight, against the CPU's", rel(run(*dev, w16.data(), DType::BF16), got), 3e-3);
}

// --- the shared fixtures on the CUDA backend ---
// The checks of dev/cuda/parity.js's fixture(), here on the emulator in fp32 mode, with the
// tolerances the fixtures state for an fp32 engine (the CPU's fixture test): logits and log-probs
// 1e-4, every gradient 1e-3 against golden.safetensors, one AdamW step, greedy tokens identical,
// and generate's log-probs against logprobs(). (bf16 mode is held to the CPU by the cases above;
// README.md says what it gives on the fixtures.)
// The list comes from a JSON file (native/test/cuda_emulated.test.ts writes it) with each
// fixture's directory, the engine config lib/config.ts derives from its config.json, and its
// adapter spec: the Hugging Face semantics stay in one place.

static std::string text(const Json& j, const char* key) {
  const Json* v = j.get(key);
  if (!v || v->kind != Json::String) throw std::runtime_error(std::string("fixtures list: ") + key + " must be a string");
  return v->str;
}
static double number(const Json& j, const char* key) {
  const Json* v = j.get(key);
  if (!v || v->kind != Json::Number) throw std::runtime_error(std::string("fixtures list: ") + key + " must be a number");
  return v->num;
}
static bool flag(const Json& j, const char* key) {
  const Json* v = j.get(key);
  if (!v || v->kind != Json::Bool) throw std::runtime_error(std::string("fixtures list: ") + key + " must be true or false");
  return v->b;
}

// lib/addon.ts's EngineConfig, as model_binding.cc reads it.
static Config engine_config(const Json& e) {
  Config c;
  c.vocab = (int64_t)number(e, "vocabSize"), c.hidden = (int64_t)number(e, "hiddenSize");
  c.inter = (int64_t)number(e, "intermediateSize"), c.layers = (int64_t)number(e, "numLayers");
  c.heads = (int64_t)number(e, "numHeads"), c.kv_heads = (int64_t)number(e, "numKvHeads");
  c.head_dim = (int64_t)number(e, "headDim"), c.max_pos = (int64_t)number(e, "maxPositions");
  c.rope_theta = number(e, "ropeTheta"), c.eps = number(e, "rmsNormEps");
  const Json* rs = e.get("ropeScaling");
  if (!rs) throw std::runtime_error("fixtures list: ropeScaling is missing");
  std::string kind = text(*rs, "kind");
  c.rope_scaling.kind = kind == "linear" ? RopeScaling::Linear : kind == "llama3" ? RopeScaling::Llama3 : RopeScaling::None;
  c.rope_scaling.factor = number(*rs, "factor"), c.rope_scaling.low_freq_factor = number(*rs, "lowFreqFactor");
  c.rope_scaling.high_freq_factor = number(*rs, "highFreqFactor");
  c.rope_scaling.original_max_positions = number(*rs, "originalMaxPositions");
  c.tied = flag(e, "tieWordEmbeddings"), c.qkv_bias = flag(e, "qkvBias"), c.o_bias = flag(e, "oBias");
  c.mlp_bias = flag(e, "mlpBias"), c.qk_norm = flag(e, "qkNorm");
  return c;
}

static SafetensorsFile open_file(const std::string& path) {
  SafetensorsFile f;
  f.what = path, f.bytes = read_file(path);
  parse_safetensors(f);
  return f;
}

static void fixture(const Json& entry) {
  const std::string dir = text(entry, "dir");
  std::printf("fixture %s\n", dir.c_str());
  const double tl = 1e-4, tg = 1e-3;
  const Config c = engine_config(*entry.get("config"));
  const Json* adapter = entry.get("adapter");
  auto open = [&](bool fp32 = true) {
    CudaOptions o;
    o.fp32 = fp32;
    auto m = std::make_unique<Model>(c, make_cuda_backend(o));
    std::vector<SafetensorsFile> files;
    files.push_back(open_file(dir + "/model.safetensors"));
    m->load(files);
    if (adapter && adapter->kind == Json::Object) {
      AdapterSpec s;
      s.r = (int64_t)number(*adapter, "r"), s.alpha = number(*adapter, "alpha");
      s.rslora = flag(*adapter, "useRslora"), s.dora = flag(*adapter, "useDora");
      for (const Json& t : adapter->get("targetModules")->items) s.targets.push_back(t.str);
      SafetensorsFile f = open_file(dir + "/adapter_model.safetensors");
      m->load_adapters(s, f);
    }
    return m;
  };
  SafetensorsFile golden = open_file(dir + "/golden.safetensors");
  std::map<std::string, const STensor*> g;
  for (const STensor& t : golden.tensors) g[t.name] = &t;
  auto values = [&](const std::string& name) {
    if (!g.count(name)) throw std::runtime_error(dir + ": golden.safetensors lacks " + name);
    std::vector<double> d = to_f64(*g[name]);
    return std::vector<float>(d.begin(), d.end());
  };
  const std::vector<float> ids = values("input_ids");
  const int64_t B = g["input_ids"]->shape[0], T = g["input_ids"]->shape[1];
  const std::vector<int32_t> tokens(ids.begin(), ids.end());

  auto m = open();
  std::vector<float> logits, lp(B * (T - 1));
  m->forward(tokens.data(), B, T, logits);
  expect("logits", rel(logits, values("logits")), tl);
  m->logprobs(tokens.data(), B, T, nullptr, lp.data(), nullptr, true);
  expect("log-probs", rel(lp, values("next_token_logprobs")), tl);
  m->zero_grad();
  m->backward(values("dlogprob").data());
  double worst = 0;
  size_t named = 0;
  std::string worst_name;
  std::vector<std::vector<float>> before, grads;
  for (auto& n : m->trainable()) {
    grads.push_back(m->read(n.t->grad, n.t->numel()));
    before.push_back(m->read(n.t->data, n.t->numel()));
    double e = g.count("grad." + n.name) ? rel(grads.back(), values("grad." + n.name)) : INFINITY;
    named += g.count("grad." + n.name);
    if (!(e <= worst)) worst = e, worst_name = n.name;
  }
  size_t golden_grads = 0;
  for (auto& [name, t] : g) golden_grads += name.rfind("grad.", 0) == 0;
  expect_count("trainable tensors that have a golden gradient", (int)named, (int)golden_grads, (int)golden_grads);
  expect("gradients (worst: " + worst_name + ")", worst, tg);
  // torch.optim.AdamW's first step from the model's own gradient, exactly.
  const Json h = parse_json(golden.metadata["adamw"].data(), golden.metadata["adamw"].size(), dir + " adamw metadata");
  const double lr = number(h, "lr"), wd = number(h, "weight_decay"), eps = number(h, "eps");
  m->step(lr, number(h, "beta1"), number(h, "beta2"), eps, wd, 0);
  worst = 0;
  auto trains = m->trainable();
  for (size_t i = 0; i < trains.size(); i++) {
    std::vector<float> want(before[i].size());
    for (size_t j = 0; j < want.size(); j++)
      want[j] = (float)(before[i][j] * (1 - lr * wd) - lr * grads[i][j] / (std::fabs((double)grads[i][j]) + eps));
    worst = std::max(worst, rel(m->read(trains[i].t->data, trains[i].t->numel()), want));
  }
  expect("one AdamW step", worst, 1e-6);

  auto fresh = open();
  const std::vector<float> prompt_f = values("greedy.prompt"), want_f = values("greedy.tokens");
  std::vector<int32_t> prompt(prompt_f.begin(), prompt_f.end()), want(want_f.begin(), want_f.end());
  SamplingParams sp;
  sp.max_new = (int64_t)want.size(), sp.temperature = 0;
  Completion done = fresh->generate({prompt}, sp)[0];
  int same = 0;
  while (same < (int)want.size() && same < (int)done.tokens.size() && done.tokens[same] == want[same]) same++;
  expect_count("greedy tokens equal to the golden ones", same, (int)want.size(), (int)want.size());
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), done.tokens.begin(), done.tokens.end());
  std::vector<float> again(seq.size() - 1);
  fresh->logprobs(seq.data(), 1, (int64_t)seq.size(), nullptr, again.data(), nullptr, false);
  expect("generate's log-probs = logprobs()", rel(done.logprobs, std::vector<float>(again.begin() + (prompt.size() - 1), again.end())), tl);

  // The rollout/training mismatch in bf16 mode: the decode path (KV cache, few-row products)
  // against the whole sequence's, both with bf16 operands, on this mode's own greedy tokens.
  // They round at different places (the cache holds bf16 K/V; decode products take few rows),
  // so this is the mismatch truncated importance sampling corrects: relative L2 5e-3 to 4e-2
  // over the shared fixtures when measured; the bound catches a decode path gone wrong.
  auto half = open(false);
  Completion done16 = half->generate({prompt}, sp)[0];
  seq = prompt;
  seq.insert(seq.end(), done16.tokens.begin(), done16.tokens.end());
  again.assign(seq.size() - 1, 0.0f);
  half->logprobs(seq.data(), 1, (int64_t)seq.size(), nullptr, again.data(), nullptr, false);
  expect("bf16 mode: generate's log-probs = logprobs()", rel(done16.logprobs, std::vector<float>(again.begin() + (prompt.size() - 1), again.end())), 8e-2);
}

static void fixtures(const char* list) {
  std::vector<uint8_t> bytes = read_file(list);
  const Json all = parse_json((const char*)bytes.data(), bytes.size(), list);
  if (all.kind != Json::Array || all.items.empty()) throw std::runtime_error(std::string(list) + ": expected a list of fixtures");
  for (const Json& entry : all.items) fixture(entry);
}

int main(int argc, char** argv) {
  const auto t0 = std::chrono::steady_clock::now();
  ops();
  const Case cases[] = {
      {"fp32", true, true, Adapters::None, 4},
      {"bf16, untied head", false, false, Adapters::None, 4},
      {"fp32, LoRA", true, true, Adapters::LoRA, 4},
      {"fp32, DoRA, untied head", true, false, Adapters::DoRA, 4},
      {"bf16, LoRA, 1 SM (128x128 tiles only)", false, true, Adapters::LoRA, 1},
      {"bf16, DoRA", false, true, Adapters::DoRA, 4},
      {"Qwen3 (q/k head norms, head_dim 128), fp32, rsLoRA on every projection", true, true, Adapters::LoRA, 4, true},
      {"Qwen3 (q/k head norms, head_dim 128), bf16, DoRA + rsLoRA on every projection, untied", false, false,
       Adapters::DoRA, 4, true},
  };
  for (const Case& k : cases) run(k);
  if (argc > 1) {
    emu::sm_count = 4;
    try {
      fixtures(argv[1]);
    } catch (const std::exception& e) {
      std::printf("  fixtures: %s FAIL\n", e.what());
      failures++;
    }
  }
  std::printf(failures ? "emulated parity: %d FAILED" : "emulated parity: all passed", failures);
  std::printf(" (%.0f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // The CPU backend keeps released buffers in a process-wide cache; give them back, or a
  // sanitizer build's leak check reports every one of them.
  trim_host_cache();
  return failures ? 1 : 0;
}
