// AdamW over the trainable tensors, and its state as a safetensors file so a run resumes
// bit for bit: exp_avg.<name>, exp_avg_sq.<name>, and the step count in the metadata.
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

#include "model/model.h"

namespace temper {

void Model::zero_grad() {
  for (auto& n : trainable())
    if (n.t->grad) be().zero(n.t->grad.get(), (size_t)n.t->numel() * 4);
}

// Returns the gradient norm before clipping (torch.nn.utils.clip_grad_norm_ then AdamW.step).
double Model::step(double lr, double b1, double b2, double eps, double wd, double max_norm) {
  ensure_gradients();
  std::vector<Named> params = trainable();
  std::vector<std::pair<const float*, int64_t>> grads;
  for (auto& n : params) grads.emplace_back(n.t->grad.f(), n.t->numel());
  double norm = std::sqrt(be().sum_squares(grads));
  if (!std::isfinite(norm)) throw std::runtime_error("the gradient is not finite (norm " + std::to_string(norm) + "); the step was not taken");
  float scale = 1.0f;
  if (max_norm > 0 && norm > max_norm) scale = (float)(max_norm / (norm + 1e-6));
  steps++;
  for (auto& n : params) {
    Param& t = *n.t;
    const size_t bytes = (size_t)t.numel() * 4;
    if (!t.m) {
      t.m = Buffer(be(), bytes, "AdamW's exp_avg", true);
      t.v = Buffer(be(), bytes, "AdamW's exp_avg_sq", true);
      be().zero(t.m.get(), bytes);
      be().zero(t.v.get(), bytes);
    }
    be().adamw(t.data.f(), t.compute.as<uint16_t>(), t.grad.f(), t.m.f(), t.v.f(), t.numel(), scale, lr, b1, b2, eps,
               wd, steps);
  }
  return norm;
}

std::vector<uint8_t> Model::optimizer_state() {
  std::vector<OutTensor> out;
  std::vector<std::vector<float>> keep;  // downloaded moments, and zeros for tensors that have not stepped yet
  keep.reserve(2 * trainable().size());
  for (auto& n : trainable()) {
    for (int which = 0; which < 2; which++) {
      const Buffer& mom = which ? n.t->v : n.t->m;
      const float* p;
      if (mom) {
        p = host_view(mom, n.t->numel(), keep);
      } else {
        keep.emplace_back((size_t)n.t->numel(), 0.0f);
        p = keep.back().data();
      }
      out.push_back({(which ? "exp_avg_sq." : "exp_avg.") + n.name, n.t->shape, p});
    }
  }
  return write_safetensors(out, DType::F32, {{"step", std::to_string(steps)}, {"format", "temper-adamw"}});
}

void Model::load_optimizer_state(SafetensorsFile& f) {
  auto it = f.metadata.find("step");
  char* end = nullptr;
  long long st = it == f.metadata.end() ? -1 : std::strtoll(it->second.c_str(), &end, 10);
  if (st < 0 || !end || *end) throw std::runtime_error(f.what + ": __metadata__.step is missing or not a count");
  std::map<std::string, const STensor*> by;
  for (auto& t : f.tensors) by[t.name] = &t;
  std::vector<std::pair<Param*, std::vector<float>>> m, v;
  for (auto& n : trainable()) {
    for (int which = 0; which < 2; which++) {
      std::string key = (which ? "exp_avg_sq." : "exp_avg.") + n.name;
      auto f2 = by.find(key);
      if (f2 == by.end()) throw std::runtime_error(f.what + ": missing \"" + key + "\"");
      if (f2->second->shape != n.t->shape) throw std::runtime_error(f.what + ": \"" + key + "\" has the wrong shape");
      (which ? v : m).emplace_back(n.t, to_f32(*f2->second, f.what));
    }
  }
  if (by.size() != m.size() + v.size())
    throw std::runtime_error(f.what + ": holds state for tensors that do not train in this model");
  for (auto* side : {&m, &v})
    for (auto& [t, d] : *side) {
      Buffer& mom = side == &m ? t->m : t->v;
      if (!mom) mom = Buffer(be(), d.size() * 4, "AdamW's moments", true);
      be().upload(mom.get(), d.data(), d.size() * 4);
    }
  steps = st;
}

}  // namespace temper
