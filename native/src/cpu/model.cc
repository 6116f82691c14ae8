// Parameters: shapes from the config, names as Hugging Face writes them, loading and
// initialisation, and which tensors train.
#include "cpu/model.h"

#include "cpu/activations.h"

#include <cblas.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <stdexcept>

#include "cpu/rng.h"

namespace temper {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void Tensor::allocate(std::vector<int64_t> s) {
  shape = std::move(s);
  data.assign((size_t)numel(), 0.0f);
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

Model::Model(const Config& c, int threads) : cfg(c), pool(threads) {
  validate_config(cfg);
  // The engine's GEMMs are sliced over `pool`; OpenBLAS's own threads would oversubscribe the cores.
  openblas_set_num_threads(1);
  const int64_t C = cfg.hidden, Q = cfg.heads * cfg.head_dim, K = cfg.kv_heads * cfg.head_dim, F = cfg.inter;
  embed.allocate({cfg.vocab, C});
  norm.allocate({C});
  if (!cfg.tied) lm_head.allocate({cfg.vocab, C});
  layers.resize(cfg.layers);
  for (int64_t l = 0; l < cfg.layers; l++) {
    Layer& L = layers[l];
    std::string p = "model.layers." + std::to_string(l) + ".";
    L.ln1.allocate({C});
    L.ln2.allocate({C});
    auto lin = [&](Linear& x, const std::string& name, int64_t in, int64_t out, bool bias) {
      x.name = p + name;
      x.in = in;
      x.out = out;
      x.w.allocate({out, in});
      if (bias) x.b.allocate({out});
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

std::vector<Named> Model::base_params() {
  std::vector<Named> out{{"model.embed_tokens.weight", &embed}};
  for (auto& L : layers) {
    std::string p = L.q.name.substr(0, L.q.name.size() - std::string("self_attn.q_proj").size());
    out.push_back({p + "input_layernorm.weight", &L.ln1});
    for (Linear* x : L.linears) {
      out.push_back({x->name + ".weight", &x->w});
      if (!x->b.shape.empty()) out.push_back({x->name + ".bias", &x->b});
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

std::vector<Named> Model::trainable() { return has_adapters() ? adapter_params() : base_params(); }

void Model::refresh_trainable() {
  std::vector<Named> all = base_params(), ad = adapter_params();
  all.insert(all.end(), ad.begin(), ad.end());
  for (auto& n : all) {
    n.t->grad.clear();
    n.t->grad.shrink_to_fit();
  }
  for (auto& n : trainable()) n.t->grad.assign(n.t->data.size(), 0.0f);
  // Optimizer moments belong to the tensors that train; a change of what trains restarts them.
  for (auto& n : all)
    if (n.t->grad.empty()) {
      n.t->m.clear();
      n.t->v.clear();
      n.t->m.shrink_to_fit();
      n.t->v.shrink_to_fit();
    }
  acts_.reset();
}

// Normal(0, 0.02) for matrices and embeddings, ones for norms, zeros for biases: HF's
// initializer_range default. Drawn in the order of base_params so a seed means one model.
void Model::init_random(uint64_t seed) {
  Rng rng(seed);
  for (auto& n : base_params()) {
    bool is_norm = n.name.find("layernorm") != std::string::npos || n.name == "model.norm.weight";
    bool is_bias = n.name.size() > 5 && n.name.compare(n.name.size() - 5, 5, ".bias") == 0;
    for (auto& x : n.t->data) x = is_norm ? 1.0f : is_bias ? 0.0f : (float)(0.02 * rng.normal());
  }
  steps = 0;
  refresh_trainable();
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
  // Written over in place: a checkpoint of the same model every step (a generator following its
  // learner) costs no allocation, and what trains, its gradients' size and its moments stay.
  for (auto& n : want) {
    n.t->data.resize((size_t)n.t->numel());
    copy_f32(*found[n.name].first, n.t->data.data());
  }
  std::vector<Named> trains = trainable();
  bool sized = true;
  for (auto& n : trains) sized = sized && n.t->grad.size() == n.t->data.size();
  if (!sized) {
    refresh_trainable();  // the first weights of a new model: gradients are made here
    return;
  }
  for (auto& n : trains) std::fill(n.t->grad.begin(), n.t->grad.end(), 0.0f);
  acts_.reset();
}

void Model::check_memory(double bytes, const std::string& what) {
  double total = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if (bytes > 0.8 * total)
    throw std::runtime_error(what + " would need " + std::to_string((int64_t)(bytes / 1e6)) + " MB, more than this machine's " +
                             std::to_string((int64_t)(total / 1e6)) + " MB allow; use smaller batches");
}

void Model::check_tokens(const int32_t* tokens, int64_t n, const char* what) const {
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= cfg.vocab)
      throw std::runtime_error(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                               " is out of range [0, " + std::to_string(cfg.vocab) + ")");
}

}  // namespace temper
