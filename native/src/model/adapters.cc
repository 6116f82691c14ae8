// PEFT adapters: LoRA (scale alpha / r), rsLoRA (alpha / sqrt r), DoRA (a learned magnitude per
// output row). Tensor names follow PEFT's adapter_model.safetensors:
// base_model.model.<module>.lora_A.weight, .lora_B.weight, .lora_magnitude_vector.
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "model/model.h"
#include "model/rng.h"

namespace temper {

namespace {

const char* kModules[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

std::set<int> target_slots(const AdapterSpec& spec) {
  if (spec.r < 1 || spec.r > 4096) throw std::runtime_error("adapter rank r must be in [1, 4096]");
  if (!(spec.alpha > 0) || !std::isfinite(spec.alpha)) throw std::runtime_error("adapter alpha must be positive");
  if (spec.targets.empty()) throw std::runtime_error("adapter target_modules is empty");
  std::set<int> slots;
  for (auto& t : spec.targets) {
    int found = -1;
    for (int i = 0; i < 7; i++)
      if (t == kModules[i]) found = i;
    if (found < 0)
      throw std::runtime_error("unknown adapter target \"" + t +
                               "\" (expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj)");
    slots.insert(found);
  }
  return slots;
}

std::string peft(const Linear& x) { return "base_model.model." + x.name; }

// Zeroed; the adapter's products read its fp32 tensors, so they have no compute copies.
std::unique_ptr<Adapter> make_adapter(Model& m, const AdapterSpec& spec, const Linear& x) {
  auto a = std::make_unique<Adapter>();
  a->r = spec.r;
  a->dora = spec.dora;
  a->scale = (float)(spec.rslora ? spec.alpha / std::sqrt((double)spec.r) : spec.alpha / (double)spec.r);
  m.allocate(a->A, {spec.r, x.in}, false);
  m.allocate(a->B, {x.out, spec.r}, false);
  if (spec.dora) m.allocate(a->mag, {x.out}, false);
  return a;
}

}  // namespace

std::vector<Named> Model::adapter_params() {
  std::vector<Named> out;
  for (auto& L : layers)
    for (Linear* x : L.linears) {
      if (!x->lora) continue;
      out.push_back({peft(*x) + ".lora_A.weight", &x->lora->A});
      out.push_back({peft(*x) + ".lora_B.weight", &x->lora->B});
      if (x->lora->dora) out.push_back({peft(*x) + ".lora_magnitude_vector", &x->lora->mag});
    }
  return out;
}

// A as PEFT's kaiming_uniform(a = sqrt 5): U(-1/sqrt(in), 1/sqrt(in)); B = 0, so the model is
// unchanged until training moves B; DoRA's magnitude starts at the row norms of W.
void Model::add_adapters(const AdapterSpec& spec, uint64_t seed) {
  if (has_adapters()) throw std::runtime_error("the model already has adapters; merge them first");
  std::set<int> slots = target_slots(spec);
  Rng rng(seed);
  for (auto& L : layers)
    for (int i : slots) {
      Linear& x = *L.linears[i];
      x.lora = make_adapter(*this, spec, x);
      float bound = 1.0f / std::sqrt((float)x.in);
      write(x.lora->A, [&](float* a) {
        for (int64_t j = 0; j < x.lora->A.numel(); j++) a[j] = (float)((2 * rng.uniform() - 1) * bound);
      });
      Buffer tmp;
      if (spec.dora) be().dora_norms(x.lora->mag.data.f(), nullptr, fp32_values(be(), x.w, tmp), nullptr, nullptr, x.out, x.in);
    }
  refresh_trainable();
}

void Model::load_adapters(const AdapterSpec& spec, SafetensorsFile& f) {
  if (has_adapters()) throw std::runtime_error("the model already has adapters; merge them first");
  std::set<int> slots = target_slots(spec);
  std::map<std::string, const STensor*> by;
  for (auto& t : f.tensors) {
    std::string name = t.name;
    // Older PEFT writes the magnitude as a module: ...lora_magnitude_vector.weight
    const std::string old = ".lora_magnitude_vector.weight";
    if (name.size() > old.size() && name.compare(name.size() - old.size(), old.size(), old) == 0)
      name = name.substr(0, name.size() - 7);
    by[name] = &t;
  }
  std::vector<std::pair<Linear*, std::unique_ptr<Adapter>>> made;
  size_t used = 0;
  for (auto& L : layers)
    for (int i : slots) {
      Linear& x = *L.linears[i];
      auto a = make_adapter(*this, spec, x);
      std::vector<std::pair<std::string, Param*>> parts = {{".lora_A.weight", &a->A}, {".lora_B.weight", &a->B}};
      if (spec.dora) parts.push_back({".lora_magnitude_vector", &a->mag});
      for (auto& [suffix, t] : parts) {
        std::string key = peft(x) + suffix;
        auto it = by.find(key);
        if (it == by.end()) throw std::runtime_error(f.what + ": missing adapter tensor \"" + key + "\"");
        if (it->second->shape != t->shape)
          throw std::runtime_error(f.what + ": adapter tensor \"" + key + "\" has the wrong shape for r = " +
                                   std::to_string(spec.r) + " on " + x.name);
        check_f32(*it->second, f.what);
        write(*t, [&](float* out) { copy_f32(*it->second, out); });
        used++;
      }
      made.emplace_back(&x, std::move(a));
    }
  if (used != by.size()) {
    for (auto& [name, t] : by) {
      bool wanted = false;
      for (auto& [x, a] : made) wanted = wanted || name.rfind(peft(*x) + ".", 0) == 0;
      if (!wanted)
        throw std::runtime_error(f.what + ": adapter tensor \"" + t->name +
                                 "\" is not covered by the adapter config's target_modules");
    }
  }
  for (auto& [x, a] : made) x->lora = std::move(a);
  refresh_trainable();
}

void Model::import_adapters(SafetensorsFile& f) {
  std::vector<Named> mine = adapter_params();
  if (mine.empty()) throw std::runtime_error(f.what + ": the model has no adapters to import into");
  std::map<std::string, const STensor*> by;
  for (auto& t : f.tensors) by[t.name] = &t;
  if (by.size() != mine.size())
    throw std::runtime_error(f.what + ": " + std::to_string(by.size()) + " adapter tensors for the model's " +
                             std::to_string(mine.size()));
  // Every tensor is checked before any is written: a refused import leaves the adapters as they were.
  for (auto& n : mine) {
    auto it = by.find(n.name);
    if (it == by.end()) throw std::runtime_error(f.what + ": missing adapter tensor \"" + n.name + "\"");
    if (it->second->shape != n.t->shape)
      throw std::runtime_error(f.what + ": adapter tensor \"" + n.name + "\" has the wrong shape");
    check_f32(*it->second, f.what);
  }
  for (auto& n : mine) write(*n.t, [&](float* out) { copy_f32(*by[n.name], out); });
}

std::vector<uint8_t> Model::export_adapters() {
  std::vector<OutTensor> ts;
  std::vector<std::vector<float>> keep;
  for (auto& n : adapter_params()) ts.push_back({n.name, n.t->shape, host_view(n.t->data, n.t->numel(), keep)});
  if (ts.empty()) throw std::runtime_error("the model has no adapters to export");
  return write_safetensors(ts, DType::F32, {{"format", "pt"}});
}

void Model::set_adapters_enabled(bool enabled) {
  if (!has_adapters()) throw std::runtime_error("the model has no adapters to switch");
  for (auto& L : layers)
    for (Linear* x : L.linears)
      if (x->lora) x->lora->enabled = enabled;
}

void Model::merge_adapters() {
  if (!has_adapters()) throw std::runtime_error("the model has no adapters to merge");
  for (auto& L : layers)
    for (Linear* x : L.linears)
      if (x->lora) {
        x->w.data = x->merged_weight(be(), true);
        if (x->w.compute) be().convert(x->w.compute.get(), DType::BF16, x->w.data.f(), x->w.numel());
        x->lora.reset();
      }
  steps = 0;
  refresh_trainable();
}

std::vector<uint8_t> Model::export_weights(DType dtype, bool merged) {
  std::vector<OutTensor> out;
  std::vector<std::vector<float>> keep;  // values downloaded or merged for the file
  for (auto& n : base_params()) {
    const Linear* adapted = nullptr;
    for (auto& L : layers)
      for (Linear* x : L.linears)
        if (merged && x->lora && &x->w == n.t) adapted = x;
    const float* p;
    if (adapted) {
      keep.push_back(read(adapted->merged_weight(be(), false), n.t->numel()));
      p = keep.back().data();
    } else if (!n.t->data) {
      keep.push_back(values(*n.t));
      p = keep.back().data();
    } else {
      p = host_view(n.t->data, n.t->numel(), keep);
    }
    out.push_back({n.name, n.t->shape, p});
  }
  return write_safetensors(out, dtype, {{"format", "pt"}});
}

}  // namespace temper
