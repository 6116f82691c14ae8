// NativeModel: the JS class behind lib/model.ts, one Model on the backend its options pick.
// Arguments are checked and copied on the JS thread; the engine work runs on a worker thread
// under the model's mutex, so calls on one model queue up and the event loop never waits for them.
#include <napi.h>

#include "backend/backends.h"
#include "js.h"
#include "model/model.h"

namespace temper {

namespace {

using js::Job;

Config read_config(Napi::Env env, Napi::Object o) {
  auto num = [&](const char* k) { return js::integer(env, o.Get(k), std::string("config.") + k, 0, INT32_MAX); };
  auto flag = [&](const char* k) { return js::boolean(env, o.Get(k), std::string("config.") + k); };
  Config c;
  c.vocab = num("vocabSize");
  c.hidden = num("hiddenSize");
  c.inter = num("intermediateSize");
  c.layers = num("numLayers");
  c.heads = num("numHeads");
  c.kv_heads = num("numKvHeads");
  c.head_dim = num("headDim");
  c.max_pos = num("maxPositions");
  c.rope_theta = js::number(env, o.Get("ropeTheta"), "config.ropeTheta");
  c.eps = js::number(env, o.Get("rmsNormEps"), "config.rmsNormEps");
  if (!o.Get("ropeScaling").IsObject()) js::type_error(env, "config.ropeScaling must be an object");
  Napi::Object rs = o.Get("ropeScaling").As<Napi::Object>();
  std::string kind = js::string(env, rs.Get("kind"), "config.ropeScaling.kind");
  if (kind == "linear") c.rope_scaling.kind = RopeScaling::Linear;
  else if (kind == "llama3") c.rope_scaling.kind = RopeScaling::Llama3;
  else if (kind != "none") js::range_error(env, "config.ropeScaling.kind must be \"none\", \"linear\" or \"llama3\"");
  c.rope_scaling.factor = js::number(env, rs.Get("factor"), "config.ropeScaling.factor");
  c.rope_scaling.low_freq_factor = js::number(env, rs.Get("lowFreqFactor"), "config.ropeScaling.lowFreqFactor");
  c.rope_scaling.high_freq_factor = js::number(env, rs.Get("highFreqFactor"), "config.ropeScaling.highFreqFactor");
  c.rope_scaling.original_max_positions =
      js::number(env, rs.Get("originalMaxPositions"), "config.ropeScaling.originalMaxPositions");
  c.tied = flag("tieWordEmbeddings");
  c.qkv_bias = flag("qkvBias");
  c.o_bias = flag("oBias");
  c.mlp_bias = flag("mlpBias");
  c.qk_norm = flag("qkNorm");
  return c;
}

AdapterSpec read_spec(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) js::type_error(env, "adapter spec must be an object");
  Napi::Object o = v.As<Napi::Object>();
  AdapterSpec s;
  s.r = js::integer(env, o.Get("r"), "r", 1, 4096);
  s.alpha = js::number(env, o.Get("alpha"), "alpha");
  s.rslora = js::boolean(env, o.Get("useRslora"), "useRslora");
  s.dora = js::boolean(env, o.Get("useDora"), "useDora");
  Napi::Value t = o.Get("targetModules");
  if (!t.IsArray()) js::type_error(env, "targetModules must be an array of strings");
  Napi::Array a = t.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) s.targets.push_back(js::string(env, a.Get(i), "targetModules[" + std::to_string(i) + "]"));
  return s;
}

DType read_dtype(Napi::Env env, Napi::Value v) {
  std::string d = js::string(env, v, "dtype");
  if (d == "F32") return DType::F32;
  if (d == "BF16") return DType::BF16;
  js::range_error(env, "dtype must be \"F32\" or \"BF16\" (got \"" + d + "\")");
}

std::shared_ptr<SafetensorsFile> open_safetensors(const std::string& path) {
  auto f = std::make_shared<SafetensorsFile>();
  f->what = path;
  f->bytes = read_file(path);
  parse_safetensors(*f);
  return f;
}

Napi::Object tensors_to_js(Napi::Env env, const std::vector<std::pair<std::string, std::vector<float>>>& ts) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& [name, data] : ts) o.Set(name, js::to_js(env, data));
  return o;
}

Napi::Value bytes_to_js(Napi::Env env, const std::vector<uint8_t>& b) {
  auto a = Napi::Uint8Array::New(env, b.size());
  std::copy(b.begin(), b.end(), a.Data());
  return a;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceMethod<&NativeModel::LoadWeights>("loadWeights"),
                           InstanceMethod<&NativeModel::InitRandom>("initRandom"),
                           InstanceMethod<&NativeModel::Forward>("forward"),
                           InstanceMethod<&NativeModel::Logprobs>("logprobs"),
                           InstanceMethod<&NativeModel::Backward>("backward"),
                           InstanceMethod<&NativeModel::Grads>("grads"),
                           InstanceMethod<&NativeModel::Weights>("weights"),
                           InstanceMethod<&NativeModel::ZeroGrad>("zeroGrad"),
                           InstanceMethod<&NativeModel::Step>("step"),
                           InstanceMethod<&NativeModel::Generate>("generate"),
                           InstanceMethod<&NativeModel::AddAdapters>("addAdapters"),
                           InstanceMethod<&NativeModel::LoadAdapters>("loadAdapters"),
                           InstanceMethod<&NativeModel::SaveAdapters>("saveAdapters"),
                           InstanceMethod<&NativeModel::MergeAdapters>("mergeAdapters"),
                           InstanceMethod<&NativeModel::Freeze>("freeze"),
                           InstanceMethod<&NativeModel::ExportAdapters>("exportAdapters"),
                           InstanceMethod<&NativeModel::ImportAdapters>("importAdapters"),
                           InstanceMethod<&NativeModel::SetAdaptersEnabled>("setAdaptersEnabled"),
                           InstanceMethod<&NativeModel::Save>("save"),
                           InstanceMethod<&NativeModel::ExportWeights>("exportWeights"),
                           InstanceMethod<&NativeModel::ImportWeights>("importWeights"),
                           InstanceMethod<&NativeModel::SaveOptimizer>("saveOptimizer"),
                           InstanceMethod<&NativeModel::LoadOptimizer>("loadOptimizer"),
                           InstanceMethod<&NativeModel::Device>("device"),
                           InstanceMethod<&NativeModel::SetTrainingOptions>("setTrainingOptions"),
                       });
  }

  NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) js::type_error(env, "config must be an object");
    Config c = read_config(env, info[0].As<Napi::Object>());
    int threads = (int)js::integer(env, info[1], "threads", 1, 256);
    // Optional third argument: { device: 'cuda', deviceIndex, precision: 'bf16' | 'fp32', maxSlots,
    // batchInvariant (absent: false) }.
    bool cuda = false, cpu_bf16 = false, batch_invariant = false;
    CudaOptions co;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsObject()) js::type_error(env, "device options must be an object");
      Napi::Object o = info[2].As<Napi::Object>();
      std::string dev = js::string(env, o.Get("device"), "device");
      if (dev != "cpu" && dev != "cuda") js::range_error(env, "device must be \"cpu\" or \"cuda\" (got \"" + dev + "\")");
      cuda = dev == "cuda";
      co.device = (int)js::integer(env, o.Get("deviceIndex"), "deviceIndex", 0, 1023);
      std::string prec = js::string(env, o.Get("precision"), "precision");
      if (prec != "bf16" && prec != "fp32") js::range_error(env, "precision must be \"bf16\" or \"fp32\" (got \"" + prec + "\")");
      co.fp32 = prec == "fp32";
      cpu_bf16 = !cuda && prec == "bf16";
      co.max_slots = js::integer(env, o.Get("maxSlots"), "maxSlots", 0, 1 << 20);
      if (o.Has("batchInvariant") && !o.Get("batchInvariant").IsUndefined())
        batch_invariant = js::boolean(env, o.Get("batchInvariant"), "batchInvariant");
      if (batch_invariant && cuda)
        js::range_error(env, "batchInvariant: the CUDA backend has no batch-invariant mode (it is a CPU mode)");
    }
    // Optional fourth argument: frozen (absent: false), Model's constructor says what it does.
    const bool frozen = info.Length() > 3 && !info[3].IsUndefined() && js::boolean(env, info[3], "frozen");
    try {
      model_ = std::make_shared<Model>(c, cuda ? make_cuda_backend(co) : make_cpu_backend(threads, cpu_bf16, batch_invariant),
                                       frozen);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  // Runs fn(model) on a worker with the model locked.
  Napi::Value run(const Napi::CallbackInfo& info, std::function<void(Model&)> fn, Job::Done done = nullptr) {
    std::shared_ptr<Model> m = model_;
    return Job::start(info.Env(), info.This().As<Napi::Object>(), [m, fn] {
      std::lock_guard<std::mutex> l(m->mu);
      fn(*m);
    }, std::move(done));
  }

  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), model_->be().describe());
  }

  Napi::Value LoadWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) js::type_error(env, "paths must be an array of strings");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<std::string> paths;
    for (uint32_t i = 0; i < a.Length(); i++) paths.push_back(js::string(env, a.Get(i), "paths[" + std::to_string(i) + "]"));
    if (paths.empty()) js::range_error(env, "paths is empty");
    return run(info, [paths](Model& m) {
      std::vector<SafetensorsFile> files(paths.size());
      for (size_t i = 0; i < paths.size(); i++) {
        files[i].what = paths[i];
        files[i].bytes = read_file(paths[i]);
        parse_safetensors(files[i]);
      }
      m.load(files);
    });
  }

  Napi::Value InitRandom(const Napi::CallbackInfo& info) {
    uint64_t seed = (uint64_t)js::integer(info.Env(), info[0], "seed", 0, (int64_t)1 << 53);
    return run(info, [seed](Model& m) { m.init_random(seed); });
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t B = js::integer(env, info[1], "batch", 1, 1 << 20), T = js::integer(env, info[2], "seqLen", 1, 1 << 20);
    auto tokens = std::make_shared<std::vector<int32_t>>(js::int32s(env, info[0], "tokens", B * T));
    auto out = std::make_shared<std::vector<float>>();
    return run(info, [=](Model& m) { m.forward(tokens->data(), B, T, *out); },
               [out](Napi::Env e) -> Napi::Value { return js::to_js(e, *out); });
  }

  Napi::Value Logprobs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t B = js::integer(env, info[1], "batch", 1, 1 << 20), T = js::integer(env, info[2], "seqLen", 2, 1 << 20);
    auto tokens = std::make_shared<std::vector<int32_t>>(js::int32s(env, info[0], "tokens", B * T));
    auto lengths = std::make_shared<std::vector<int32_t>>();
    if (!info[3].IsUndefined() && !info[3].IsNull()) *lengths = js::int32s(env, info[3], "lengths", B);
    bool want_entropy = js::boolean(env, info[4], "entropy");
    bool keep = js::boolean(env, info[5], "grad");
    auto lp = std::make_shared<std::vector<float>>(B * (T - 1));
    auto ent = std::make_shared<std::vector<float>>(want_entropy ? B * (T - 1) : 0);
    return run(info, [=](Model& m) {
      const int32_t* lens = lengths->empty() ? nullptr : lengths->data();
      m.logprobs(tokens->data(), B, T, lens, lp->data(), want_entropy ? ent->data() : nullptr, keep);
    }, [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("logprobs", js::to_js(e, *lp));
      if (want_entropy) o.Set("entropy", js::to_js(e, *ent));
      return o;
    });
  }

  Napi::Value Backward(const Napi::CallbackInfo& info) {
    auto d = std::make_shared<std::vector<float>>(js::float32s(info.Env(), info[0], "dlogprob"));
    return run(info, [d](Model& m) {
      int64_t want = m.pending_rows();
      if (want && (int64_t)d->size() != want)
        throw std::runtime_error("dlogprob has " + std::to_string(d->size()) + " elements, expected " +
                                 std::to_string(want) + " (batch x (seqLen - 1) of the last logprobs call)");
      m.backward(d->data());
    });
  }

  using NamedData = std::vector<std::pair<std::string, std::vector<float>>>;

  Napi::Value Grads(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<NamedData>();
    return run(info, [out](Model& m) {
      m.ensure_gradients();
      for (auto& n : m.trainable()) out->emplace_back(n.name, m.read(n.t->grad, n.t->numel()));
    }, [out](Napi::Env e) -> Napi::Value { return tensors_to_js(e, *out); });
  }

  // weights("trainable" | "base" | "adapters")
  Napi::Value Weights(const Napi::CallbackInfo& info) {
    std::string kind = js::string(info.Env(), info[0], "kind");
    if (kind != "trainable" && kind != "base" && kind != "adapters")
      js::range_error(info.Env(), "kind must be \"trainable\", \"base\" or \"adapters\"");
    auto out = std::make_shared<NamedData>();
    return run(info, [out, kind](Model& m) {
      auto list = kind == "base" ? m.base_params() : kind == "adapters" ? m.adapter_params() : m.trainable();
      for (auto& n : list) out->emplace_back(n.name, m.values(*n.t));
    }, [out](Napi::Env e) -> Napi::Value { return tensors_to_js(e, *out); });
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return run(info, [](Model& m) { m.zero_grad(); });
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double lr = js::number(env, info[0], "lr"), b1 = js::number(env, info[1], "beta1"),
           b2 = js::number(env, info[2], "beta2"), eps = js::number(env, info[3], "eps"),
           wd = js::number(env, info[4], "weightDecay"), mx = js::number(env, info[5], "maxGradNorm");
    if (lr < 0) js::range_error(env, "lr must be >= 0");
    if (b1 < 0 || b1 >= 1) js::range_error(env, "beta1 must be in [0, 1)");
    if (b2 < 0 || b2 >= 1) js::range_error(env, "beta2 must be in [0, 1)");
    if (eps <= 0) js::range_error(env, "eps must be > 0");
    if (wd < 0) js::range_error(env, "weightDecay must be >= 0");
    auto norm = std::make_shared<double>(0);
    return run(info, [=](Model& m) { *norm = m.step(lr, b1, b2, eps, wd, mx); },
               [norm](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *norm); });
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) js::type_error(env, "prompts must be an array of Int32Array");
    Napi::Array a = info[0].As<Napi::Array>();
    auto prompts = std::make_shared<std::vector<std::vector<int32_t>>>();
    for (uint32_t i = 0; i < a.Length(); i++) prompts->push_back(js::int32s(env, a.Get(i), "prompts[" + std::to_string(i) + "]"));
    SamplingParams sp;
    sp.max_new = js::integer(env, info[1], "maxNewTokens", 0, 1 << 20);
    sp.temperature = js::number(env, info[2], "temperature");
    sp.top_p = js::number(env, info[3], "topP");
    sp.top_k = js::integer(env, info[4], "topK", 0, INT32_MAX);
    sp.stop = js::int32s(env, info[5], "stopTokens");
    sp.seed = (uint64_t)js::integer(env, info[6], "seed", 0, (int64_t)1 << 53);
    sp.n = js::integer(env, info[7], "n", 1, 1 << 16);
    if (info.Length() > 8 && !info[8].IsUndefined()) {
      if (!info[8].IsArray()) js::type_error(env, "seeds must be an array of integers, one per prompt");
      Napi::Array s = info[8].As<Napi::Array>();
      if (s.Length() != prompts->size())
        js::range_error(env, "seeds has " + std::to_string(s.Length()) + " entries for " + std::to_string(prompts->size()) + " prompts");
      for (uint32_t i = 0; i < s.Length(); i++)
        sp.prompt_seeds.push_back((uint64_t)js::integer(env, s.Get(i), "seeds[" + std::to_string(i) + "]", 0, (int64_t)1 << 53));
    }
    if (sp.temperature < 0) js::range_error(env, "temperature must be >= 0");
    if (!(sp.top_p > 0 && sp.top_p <= 1)) js::range_error(env, "topP must be in (0, 1]");
    auto out = std::make_shared<std::vector<Completion>>();
    return run(info, [=](Model& m) { *out = m.generate(*prompts, sp); }, [out](Napi::Env e) -> Napi::Value {
      Napi::Array arr = Napi::Array::New(e, out->size());
      for (size_t i = 0; i < out->size(); i++) {
        Napi::Object o = Napi::Object::New(e);
        o.Set("tokens", js::to_js(e, (*out)[i].tokens));
        o.Set("logprobs", js::to_js(e, (*out)[i].logprobs));
        o.Set("finishReason", Napi::String::New(e, (*out)[i].finish));
        arr.Set((uint32_t)i, o);
      }
      return arr;
    });
  }

  Napi::Value AddAdapters(const Napi::CallbackInfo& info) {
    AdapterSpec spec = read_spec(info.Env(), info[0]);
    uint64_t seed = (uint64_t)js::integer(info.Env(), info[1], "seed", 0, (int64_t)1 << 53);
    return run(info, [=](Model& m) { m.add_adapters(spec, seed); });
  }

  Napi::Value LoadAdapters(const Napi::CallbackInfo& info) {
    AdapterSpec spec = read_spec(info.Env(), info[0]);
    std::string path = js::string(info.Env(), info[1], "path");
    return run(info, [=](Model& m) {
      auto f = open_safetensors(path);
      m.load_adapters(spec, *f);
    });
  }

  Napi::Value SaveAdapters(const Napi::CallbackInfo& info) {
    std::string path = js::string(info.Env(), info[0], "path");
    DType dt = read_dtype(info.Env(), info[1]);
    return run(info, [=](Model& m) {
      std::vector<OutTensor> ts;
      std::vector<std::vector<float>> keep;
      for (auto& n : m.adapter_params()) ts.push_back({n.name, n.t->shape, m.host_view(n.t->data, n.t->numel(), keep)});
      if (ts.empty()) throw std::runtime_error("the model has no adapters to save");
      write_file(path, write_safetensors(ts, dt, {{"format", "pt"}}));
    });
  }

  Napi::Value ExportAdapters(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<std::vector<uint8_t>>();
    return run(info, [=](Model& m) { *out = m.export_adapters(); }, [out](Napi::Env e) { return bytes_to_js(e, *out); });
  }

  Napi::Value ImportAdapters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      js::type_error(env, "adapters must be a Uint8Array (safetensors bytes, as exportAdapters gives)");
    auto u = info[0].As<Napi::Uint8Array>();
    auto file = std::make_shared<SafetensorsFile>();
    file->what = "imported adapters";
    file->borrowed = u.Data();
    file->borrowed_size = u.ElementLength();
    // Read where they are, on the worker: the array is held until the call settles.
    auto held = std::make_shared<Napi::ObjectReference>(Napi::Persistent(info[0].As<Napi::Object>()));
    return run(info, [file](Model& m) {
      parse_safetensors(*file);
      m.import_adapters(*file);
    }, [held](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  }

  Napi::Value SetAdaptersEnabled(const Napi::CallbackInfo& info) {
    bool enabled = js::boolean(info.Env(), info[0], "enabled");
    return run(info, [=](Model& m) { m.set_adapters_enabled(enabled); });
  }

  // How the training pass trades memory for time (Model::head_chunk_rows, Model::recompute).
  Napi::Value SetTrainingOptions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t rows = js::integer(env, info[0], "headChunkRows", 0, (int64_t)1 << 40);
    bool recompute = js::boolean(env, info[1], "recompute");
    return run(info, [=](Model& m) {
      m.head_chunk_rows = rows;
      m.recompute = recompute;
    });
  }

  Napi::Value MergeAdapters(const Napi::CallbackInfo& info) {
    return run(info, [](Model& m) { m.merge_adapters(); });
  }

  Napi::Value Freeze(const Napi::CallbackInfo& info) {
    return run(info, [](Model& m) { m.freeze(); });
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    std::string path = js::string(info.Env(), info[0], "path");
    DType dt = read_dtype(info.Env(), info[1]);
    return run(info, [=](Model& m) { write_file(path, m.export_weights(dt, false)); });
  }

  Napi::Value ExportWeights(const Napi::CallbackInfo& info) {
    DType dt = read_dtype(info.Env(), info[0]);
    bool merged = js::boolean(info.Env(), info[1], "merged");
    auto out = std::make_shared<std::vector<uint8_t>>();
    return run(info, [=](Model& m) { *out = m.export_weights(dt, merged); },
               [out](Napi::Env e) { return bytes_to_js(e, *out); });
  }

  Napi::Value ImportWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      js::type_error(env, "weights must be a Uint8Array (safetensors bytes, as exportWeights gives)");
    auto u = info[0].As<Napi::Uint8Array>();
    auto files = std::make_shared<std::vector<SafetensorsFile>>(1);
    (*files)[0].what = "imported weights";
    (*files)[0].borrowed = u.Data();
    (*files)[0].borrowed_size = u.ElementLength();
    // The bytes are read where they are, on the worker: the array is held until the call
    // settles (the job, and this reference with it, is released on the JS thread).
    auto held = std::make_shared<Napi::ObjectReference>(Napi::Persistent(info[0].As<Napi::Object>()));
    return run(info, [files](Model& m) {
      parse_safetensors((*files)[0]);
      m.load(*files);
    }, [held](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  }

  Napi::Value SaveOptimizer(const Napi::CallbackInfo& info) {
    std::string path = js::string(info.Env(), info[0], "path");
    return run(info, [=](Model& m) { write_file(path, m.optimizer_state()); });
  }

  Napi::Value LoadOptimizer(const Napi::CallbackInfo& info) {
    std::string path = js::string(info.Env(), info[0], "path");
    return run(info, [=](Model& m) {
      auto f = open_safetensors(path);
      m.load_optimizer_state(*f);
    });
  }

  std::shared_ptr<Model> model_;
};

}  // namespace

Napi::Function define_native_model(Napi::Env env) { return NativeModel::Define(env); }

}  // namespace temper
