// AdamW over the trainable tensors, and its state as a safetensors file so a run resumes
// bit for bit: exp_avg.<name>, exp_avg_sq.<name>, and the step count in the metadata.
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

#include "cpu/model.h"

namespace temper {

void Model::zero_grad() {
  for (auto& n : trainable()) std::fill(n.t->grad.begin(), n.t->grad.end(), 0.0f);
}

// Returns the gradient norm before clipping (torch.nn.utils.clip_grad_norm_ then AdamW.step).
double Model::step(double lr, double b1, double b2, double eps, double wd, double max_norm) {
  std::vector<Named> params = trainable();
  double ss = 0;
  for (auto& n : params) ss += sum_squares(pool, n.t->grad.data(), n.t->numel());
  double norm = std::sqrt(ss);
  if (!std::isfinite(norm)) throw std::runtime_error("the gradient is not finite (norm " + std::to_string(norm) + "); the step was not taken");
  float scale = 1.0f;
  if (max_norm > 0 && norm > max_norm) scale = (float)(max_norm / (norm + 1e-6));
  steps++;
  for (auto& n : params) {
    Tensor& t = *n.t;
    if (t.m.empty()) {
      t.m.assign(t.data.size(), 0.0f);
      t.v.assign(t.data.size(), 0.0f);
    }
    adamw_update(pool, t.data.data(), t.grad.data(), t.m.data(), t.v.data(), t.numel(), scale, lr, b1, b2, eps, wd,
                 steps);
  }
  return norm;
}

std::vector<uint8_t> Model::optimizer_state() {
  std::vector<OutTensor> out;
  std::vector<std::vector<float>> zeros;  // moments of tensors that have not stepped yet
  zeros.reserve(2 * trainable().size());
  for (auto& n : trainable()) {
    for (int which = 0; which < 2; which++) {
      std::vector<float>& mom = which ? n.t->v : n.t->m;
      const float* p = mom.data();
      if (mom.empty()) {
        zeros.emplace_back(n.t->data.size(), 0.0f);
        p = zeros.back().data();
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
  std::vector<std::pair<Tensor*, std::vector<float>>> m, v;
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
  for (auto& [t, d] : m) t->m = std::move(d);
  for (auto& [t, d] : v) t->v = std::move(d);
  steps = st;
}

}  // namespace temper
