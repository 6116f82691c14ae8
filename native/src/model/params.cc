// Parameters: shapes from the config, names as Hugging Face writes them, their storage in the
// backend, loading and initialisation, and which tensors train.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

#include "model/activations.h"
#include "model/normals.h"
#include "model/rng.h"

namespace temper {

int64_t Param::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Weight Param::weight() const { return compute ? Weight{compute.get(), DType::BF16} : Weight{data.get(), DType::F32}; }

const float* fp32_values(Backend& be, const Param& p, Buffer& tmp) {
  if (p.data || !p.compute) return p.data.f();
  tmp = Buffer(be, (size_t)p.numel() * 4, "a bf16 weight widened");
  be.widen(tmp.f(), p.compute.as<uint16_t>(), p.numel());
  return tmp.f();
}

void validate_config(const Config& c) {
  auto need = [](bool ok, const std::string& why) {
    if (!ok) throw std::runtime_error("invalid config: " + why);
  };
  const int64_t big = 1 << 20;
  need(c.vocab >= 1 && c.vocab <= (1 << 24), "vocab_size must be in [1, 2^24]");
  need(c.hidden >= 1 && c.hidden <= big, "hidden_size must be in [1, 2^20]");
  need(c.inter >= 1 && c.inter <= big, "intermediate_size must be in [1, 2^20]");
  need(c.layers >= 1 && c.layers <= 1024, "num_hidden_layers must be in [1, 1024]");
  need(c.heads >= 1 && c.heads <= 1024, "num_attention_heads must be in [1, 1024]");
  need(c.kv_heads >= 1 && c.heads % c.kv_heads == 0, "num_key_value_heads must divide num_attention_heads");
  need(c.head_dim >= 2 && c.head_dim % 2 == 0 && c.head_dim <= 1024, "head_dim must be even and in [2, 1024]");
  need(c.max_pos >= 1, "max_position_embeddings must be >= 1");
  need(c.rope_theta > 0 && std::isfinite(c.rope_theta), "rope_theta must be positive");
  need(c.eps > 0 && c.eps < 1, "rms_norm_eps must be in (0, 1)");
  const RopeScaling& s = c.rope_scaling;
  need(s.factor > 0 && std::isfinite(s.factor), "rope_scaling.factor must be positive");
  need(s.kind != RopeScaling::Llama3 ||
           (s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor && s.original_max_positions > 0),
       "rope_scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
  double params = (double)c.vocab * c.hidden * (c.tied ? 1 : 2) +
                  (double)c.layers * ((double)c.hidden * c.head_dim * (2 * c.heads + 2 * c.kv_heads) +
                                      3.0 * c.hidden * c.inter);
  need(params < 4e9, "the model would have more than 4e9 parameters");
}

Model::Model(const Config& c, std::unique_ptr<Backend> b, bool frozen) : backend(std::move(b)), cfg(c), frozen_(frozen) {
  validate_config(cfg);
  std::string refused = backend->attention_unsupported(cfg.heads, cfg.kv_heads, cfg.head_dim);
  if (!refused.empty()) throw std::runtime_error(refused);
  const int64_t C = cfg.hidden, Q = cfg.heads * cfg.head_dim, K = cfg.kv_heads * cfg.head_dim, F = cfg.inter;
  allocate(embed, {cfg.vocab, C}, cfg.tied);
  allocate(norm, {C}, false);
  if (!cfg.tied) allocate(lm_head, {cfg.vocab, C}, true);
  layers.resize(cfg.layers);
  for (int64_t l = 0; l < cfg.layers; l++) {
    Layer& L = layers[l];
    std::string p = "model.layers." + std::to_string(l) + ".";
    allocate(L.ln1, {C}, false);
    allocate(L.ln2, {C}, false);
    if (cfg.qk_norm) allocate(L.q_norm, {cfg.head_dim}, false), allocate(L.k_norm, {cfg.head_dim}, false);
    auto lin = [&](Linear& x, const std::string& name, int64_t in, int64_t out, bool bias) {
      x.name = p + name;
      x.in = in;
      x.out = out;
      allocate(x.w, {out, in}, true, !(frozen_ && bf16_only_base()));
      if (bias) allocate(x.b, {out}, false);
    };
    lin(L.q, "self_attn.q_proj", C, Q, cfg.qkv_bias);
    lin(L.k, "self_attn.k_proj", C, K, cfg.qkv_bias);
    lin(L.v, "self_attn.v_proj", C, K, cfg.qkv_bias);
    lin(L.o, "self_attn.o_proj", Q, C, cfg.o_bias);
    lin(L.gate, "mlp.gate_proj", C, F, cfg.mlp_bias);
    lin(L.up, "mlp.up_proj", C, F, cfg.mlp_bias);
    lin(L.down, "mlp.down_proj", F, C, cfg.mlp_bias);
  }
}

Model::~Model() = default;

void Model::allocate(Param& p, std::vector<int64_t> shape, bool copy, bool master) {
  p.shape = std::move(shape);
  const size_t n = (size_t)p.numel();
  p.compute = Buffer();
  if (copy && be().compute_dtype() == DType::BF16) {
    p.compute = Buffer(be(), n * 2, "a parameter's bf16 copy", true);
    zero_resident(p.compute.get(), n * 2);
  }
  p.data = Buffer();
  if (master || !p.compute) {
    p.data = Buffer(be(), n * 4, "a parameter", true);
    zero_resident(p.data.get(), n * 4);
  }
}

bool Model::bf16_only_base() const {
  // On the CPU only for now: on CUDA, DoRA's norms would widen the copy through the host on
  // every forward (a device widen kernel would lift this).
  return be().compute_dtype() == DType::BF16 && be().host_address(embed.data.get()) != nullptr;
}

// Zeroing is where a new model's memory is first touched (and faulted in): on the host, in
// parallel slices.
void Model::zero_resident(void* p, size_t bytes) {
  char* host = static_cast<char*>(be().host_address(p));
  const size_t slice = size_t(4) << 20;
  if (!host || bytes <= slice) return be().zero(p, bytes);
  be().host_parallel((int64_t)((bytes + slice - 1) / slice), [&](int64_t i) {
    const size_t at = (size_t)i * slice;
    std::memset(host + at, 0, std::min(slice, bytes - at));
  });
}

void Model::write(Param& p, const std::function<void(float*)>& fill) {
  const int64_t n = p.numel();
  // A dropped master (a frozen base in bf16): the values pass through scratch into the copy.
  Buffer passing;
  if (!p.data) passing = Buffer(be(), (size_t)n * 4, "a weight being converted");
  const Buffer& values = p.data ? p.data : passing;
  if (void* host = be().host_address(values.get())) {
    fill(static_cast<float*>(host));
  } else {
    std::vector<float> staging((size_t)n);
    fill(staging.data());
    be().upload(values.get(), staging.data(), (size_t)n * 4);
  }
  if (p.compute) be().convert(p.compute.get(), DType::BF16, values.f(), n);
}

const float* Model::host_view(const Buffer& b, int64_t n, std::vector<std::vector<float>>& keep) {
  if (void* host = be().host_address(b.get())) return static_cast<const float*>(host);
  keep.push_back(read(b, n));
  return keep.back().data();
}

std::vector<float> Model::values(const Param& p) {
  Buffer tmp;
  const float* v = fp32_values(be(), p, tmp);
  std::vector<float> out((size_t)p.numel());
  if (!out.empty()) be().download(out.data(), v, out.size() * 4);
  return out;
}

std::vector<float> Model::read(const Buffer& b, int64_t n) {
  std::vector<float> out((size_t)n);
  if (n) be().download(out.data(), b.get(), (size_t)n * 4);
  return out;
}

Buffer Model::upload_ints(const std::vector<int32_t>& v, const char* what) {
  Buffer b(be(), v.size() * 4, what);
  if (!v.empty()) be().upload(b.get(), v.data(), v.size() * 4);
  return b;
}

std::vector<Named> Model::base_params() {
  std::vector<Named> out{{"model.embed_tokens.weight", &embed}};
  for (auto& L : layers) {
    std::string p = L.q.name.substr(0, L.q.name.size() - std::string("self_attn.q_proj").size());
    out.push_back({p + "input_layernorm.weight", &L.ln1});
    for (Linear* x : L.linears) {
      out.push_back({x->name + ".weight", &x->w});
      if (x->b.exists()) out.push_back({x->name + ".bias", &x->b});
      // Where Qwen3's attention module declares them, after its projections.
      if (x == &L.o && L.q_norm.exists()) {
        out.push_back({p + "self_attn.q_norm.weight", &L.q_norm});
        out.push_back({p + "self_attn.k_norm.weight", &L.k_norm});
      }
    }
    out.push_back({p + "post_attention_layernorm.weight", &L.ln2});
  }
  out.push_back({"model.norm.weight", &norm});
  if (!cfg.tied) out.push_back({"lm_head.weight", &lm_head});
  return out;
}

bool Model::has_adapters() const {
  for (auto& L : layers)
    for (const Linear* x : L.linears)
      if (x->lora) return true;
  return false;
}

std::vector<Named> Model::trainable() {
  if (frozen_) return {};
  return has_adapters() ? adapter_params() : base_params();
}

void Model::freeze() {
  frozen_ = true;
  refresh_trainable();
}

void Model::refresh_trainable() {
  const bool frozen = (frozen_ || has_adapters()) && bf16_only_base();
  for (auto& L : layers)
    for (Linear* x : L.linears) {
      Param& w = x->w;
      if (!w.compute) continue;
      if (frozen) {
        w.data.reset();
      } else if (!w.data) {
        Buffer master(be(), (size_t)w.numel() * 4, "a parameter", true);
        be().widen(master.f(), w.compute.as<uint16_t>(), w.numel());
        w.data = std::move(master);
      }
    }
  std::vector<Named> all = base_params(), ad = adapter_params();
  all.insert(all.end(), ad.begin(), ad.end());
  for (auto& n : all) n.t->grad.reset(), n.t->trains = false;
  for (auto& n : trainable()) n.t->trains = true;
  // Optimizer moments belong to the tensors that train; a change of what trains restarts them.
  for (auto& n : all)
    if (!n.t->trains) {
      n.t->m.reset();
      n.t->v.reset();
    }
  acts_.reset();
}

void Model::ensure_gradients() {
  for (auto& n : trainable()) {
    if (n.t->grad) continue;
    const size_t bytes = (size_t)n.t->numel() * 4;
    n.t->grad = Buffer(be(), bytes, "a gradient", true);
    be().zero(n.t->grad.get(), bytes);
  }
}

// Normal(0, 0.02) for matrices and embeddings, ones for norms, zeros for biases: HF's
// initializer_range default. Drawn in the order of base_params so a seed means one model.
void Model::init_random(uint64_t seed) {
  Rng rng(seed);
  const ParallelFor parallel = [this](int64_t n, const std::function<void(int64_t)>& fn) { be().host_parallel(n, fn); };
  for (auto& n : base_params()) {
    bool is_norm = n.name.find("norm.weight") != std::string::npos;  // input_layernorm, q_norm, model.norm, ...
    bool is_bias = n.name.size() > 5 && n.name.compare(n.name.size() - 5, 5, ".bias") == 0;
    write(*n.t, [&](float* x) {
      if (is_norm || is_bias) std::fill(x, x + n.t->numel(), is_norm ? 1.0f : 0.0f);
      else fill_normals(rng, x, n.t->numel(), 0.02, parallel);
    });
  }
  steps = 0;
  refresh_trainable();
}

// A tied model's head is its embedding, so transformers drops a stored lm_head.weight; one that
// differs means the config and the weights disagree, and the engine refuses rather than pick.
static void check_tied_head(const STensor& head, const STensor& embed) {
  bool same = head.shape == embed.shape;
  if (same && head.dtype == embed.dtype) same = std::memcmp(head.data, embed.data, head.nbytes) == 0;
  else if (same) same = to_f32(head, "lm_head.weight") == to_f32(embed, "model.embed_tokens.weight");
  if (!same)
    throw std::runtime_error("tie_word_embeddings is true but the weights hold an lm_head.weight that differs from "
                             "model.embed_tokens.weight: set tie_word_embeddings to false to use that head");
}

void Model::load(std::vector<SafetensorsFile>& files) {
  std::map<std::string, std::pair<const STensor*, const SafetensorsFile*>> found;
  for (auto& f : files) {
    for (auto& t : f.tensors) {
      auto [it, fresh] = found.emplace(t.name, std::make_pair(&t, &f));
      if (!fresh) throw std::runtime_error("tensor \"" + t.name + "\" is in both " + it->second.second->what + " and " + f.what);
    }
  }
  std::vector<Named> want = base_params();
  // Check every name and shape before converting anything, so a bad file leaves the model as it was.
  for (auto& n : want) {
    auto it = found.find(n.name);
    if (it == found.end() && n.t == &lm_head)
      throw std::runtime_error("missing tensor \"lm_head.weight\" (tie_word_embeddings is false, so the config needs "
                               "its own head; a model whose head is its embedding sets tie_word_embeddings true)");
    if (it == found.end()) throw std::runtime_error("missing tensor \"" + n.name + "\" (the config needs it)");
    if (it->second.first->shape != n.t->shape) {
      std::string got, exp;
      for (auto d : it->second.first->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : n.t->shape) exp += (exp.empty() ? "" : ", ") + std::to_string(d);
      throw std::runtime_error(it->second.second->what + ": tensor \"" + n.name + "\" has shape [" + got +
                               "] but the config needs [" + exp + "]");
    }
  }
  for (auto& [name, t] : found) {
    bool known = false;
    for (auto& n : want) known = known || n.name == name;
    bool ignorable = name.find("rotary_emb.inv_freq") != std::string::npos || (cfg.tied && name == "lm_head.weight");
    if (!known && !ignorable)
      throw std::runtime_error(t.second->what + ": unexpected tensor \"" + name + "\" (not part of this config)");
  }
  for (auto& n : want) check_f32(*found[n.name].first, found[n.name].second->what);
  if (cfg.tied && found.count("lm_head.weight")) check_tied_head(*found["lm_head.weight"].first, *found["model.embed_tokens.weight"].first);
  // Written over in place: a checkpoint of the same model every step (a generator following its
  // learner) costs no allocation, and what trains, its gradients' size and its moments stay.
  // Converted (bf16 and f16 widened) in slices on the backend's threads.
  const size_t slice = size_t(1) << 20;
  for (auto& n : want)
    write(*n.t, [&](float* out) {
      const STensor& t = *found[n.name].first;
      const size_t count = (size_t)t.numel();
      be().host_parallel((int64_t)((count + slice - 1) / slice), [&](int64_t i) {
        copy_f32(t, out, (size_t)i * slice, std::min(count, (size_t)(i + 1) * slice));
      });
    });
  std::vector<Named> trains = trainable();
  bool sized = true;
  for (auto& n : trains) sized = sized && n.t->trains;
  if (!sized) {
    refresh_trainable();  // the first weights of a new model: what trains is settled here
    return;
  }
  for (auto& n : trains)
    if (n.t->grad) be().zero(n.t->grad.get(), (size_t)n.t->numel() * 4);
  acts_.reset();
}

void Model::check_tokens(const int32_t* tokens, int64_t n, const char* what) const {
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= cfg.vocab)
      throw std::runtime_error(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                               " is out of range [0, " + std::to_string(cfg.vocab) + ")");
}

}  // namespace temper
