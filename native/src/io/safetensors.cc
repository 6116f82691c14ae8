#include "io/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "io/json.h"

namespace temper {

namespace {

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    default: return 1;
  }
}

bool parse_dtype(const std::string& s, DType* d) {
  static const std::pair<const char*, DType> names[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I32", DType::I32},
      {"I64", DType::I64}, {"I16", DType::I16}, {"I8", DType::I8},     {"U8", DType::U8},   {"BOOL", DType::BOOL}};
  for (auto& n : names)
    if (s == n.first) {
      *d = n.second;
      return true;
    }
  return false;
}

float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

int64_t STensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    default: return "BOOL";
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::streamoff size = in.tellg();
  if (size < 0) throw std::runtime_error("cannot read " + path);
  std::vector<uint8_t> bytes((size_t)size);
  in.seekg(0);
  if (size > 0 && !in.read((char*)bytes.data(), size)) throw std::runtime_error("cannot read " + path);
  return bytes;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path);
    out.write((const char*)bytes.data(), (std::streamsize)bytes.size());
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  // Renaming makes the file appear whole or not at all, so a crash never leaves half a checkpoint.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

void parse_safetensors(SafetensorsFile& f) {
  const std::string& what = f.what;
  auto fail = [&](const std::string& why) -> void { throw std::runtime_error(what + ": " + why); };
  if (f.size() < 8) fail("too short for a safetensors file (" + std::to_string(f.size()) + " bytes)");
  uint64_t hlen = load<uint64_t>(f.data());
  if (hlen > f.size() - 8) {
    fail("header length " + std::to_string(hlen) + " runs past the end of the file (" + std::to_string(f.size()) +
         " bytes)");
  }
  if (hlen > (100u << 20)) fail("header length " + std::to_string(hlen) + " is over the 100 MiB limit");
  Json header = parse_json((const char*)f.data() + 8, (size_t)hlen, what + " header");
  if (header.kind != Json::Object) fail("header is not a JSON object");
  const uint8_t* base = f.data() + 8 + hlen;
  uint64_t data_size = f.size() - 8 - hlen;
  f.tensors.clear();
  f.metadata.clear();
  for (auto& [name, entry] : header.fields) {
    if (name == "__metadata__") {
      if (entry.kind != Json::Object) fail("__metadata__ is not an object");
      for (auto& [k, v] : entry.fields) {
        if (v.kind != Json::String) fail("__metadata__." + k + " is not a string");
        f.metadata[k] = v.str;
      }
      continue;
    }
    auto bad = [&](const std::string& why) { fail("tensor \"" + name + "\": " + why); };
    if (entry.kind != Json::Object) bad("entry is not an object");
    const Json* dt = entry.get("dtype");
    const Json* shape = entry.get("shape");
    const Json* offs = entry.get("data_offsets");
    if (!dt || dt->kind != Json::String) bad("dtype missing or not a string");
    STensor t;
    t.name = name;
    if (!parse_dtype(dt->str, &t.dtype)) bad("unknown dtype \"" + dt->str + "\"");
    if (!shape || shape->kind != Json::Array) bad("shape missing or not an array");
    if (shape->items.size() > 8) bad("more than 8 dimensions");
    uint64_t numel = 1;
    for (auto& d : shape->items) {
      if (d.kind != Json::Number || d.num < 0 || d.num != std::floor(d.num) || d.num > 9007199254740992.0)
        bad("shape entries must be non-negative integers");
      uint64_t di = (uint64_t)d.num;
      if (di != 0 && numel > (UINT64_C(1) << 50) / di) bad("shape is impossibly large");
      numel *= di;
      t.shape.push_back((int64_t)di);
    }
    if (!offs || offs->kind != Json::Array || offs->items.size() != 2) bad("data_offsets must be [begin, end]");
    double b = offs->items[0].num, e = offs->items[1].num;
    if (offs->items[0].kind != Json::Number || offs->items[1].kind != Json::Number || b < 0 || e < b ||
        b != std::floor(b) || e != std::floor(e))
      bad("data_offsets must be integers with 0 <= begin <= end");
    if (e > (double)data_size) {
      bad("data_offsets end " + std::to_string((uint64_t)e) + " is past the data (" + std::to_string(data_size) +
          " bytes)");
    }
    t.nbytes = (size_t)(e - b);
    if ((uint64_t)t.nbytes != numel * dtype_size(t.dtype)) {
      bad("holds " + std::to_string(t.nbytes) + " bytes but shape and dtype need " +
          std::to_string(numel * dtype_size(t.dtype)));
    }
    t.data = base + (size_t)b;
    f.tensors.push_back(std::move(t));
  }
  std::vector<const STensor*> sorted;
  for (auto& t : f.tensors)
    if (t.nbytes) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->data < b->data; });
  for (size_t i = 1; i < sorted.size(); i++) {
    if (sorted[i - 1]->data + sorted[i - 1]->nbytes > sorted[i]->data)
      fail("tensors \"" + sorted[i - 1]->name + "\" and \"" + sorted[i]->name + "\" overlap");
  }
}

// One element of an F32 / F16 / BF16 tensor as fp32.
static inline float element_f32(DType dtype, const uint8_t* p, size_t i) {
  switch (dtype) {
    case DType::F16: return half_to_float(load<uint16_t>(p + 2 * i));
    case DType::BF16: return bf16_value(load<uint16_t>(p + 2 * i));
    default: return load<float>(p + 4 * i);
  }
}

void check_f32(const STensor& t, const std::string& what) {
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    throw std::runtime_error(what + ": tensor \"" + t.name + "\" has dtype " + dtype_name(t.dtype) +
                             "; weights must be F32, F16 or BF16");
  size_t n = (size_t)t.numel();
  if (t.dtype == DType::F32) {
    // All exponent bits set is NaN or infinity; tested branch-free so it vectorizes.
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t b = load<uint32_t>(t.data + 4 * i);
      bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
    }
    if (!bad) return;
  }
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(element_f32(t.dtype, t.data, i)))
      throw std::runtime_error(what + ": tensor \"" + t.name + "\" contains NaN or infinity at element " +
                               std::to_string(i));
}

void copy_f32(const STensor& t, float* out) { copy_f32(t, out, 0, (size_t)t.numel()); }

void copy_f32(const STensor& t, float* out, size_t begin, size_t end) {
  if (t.dtype == DType::F32) std::memcpy(out + begin, t.data + begin * 4, (end - begin) * 4);
  else for (size_t i = begin; i < end; i++) out[i] = element_f32(t.dtype, t.data, i);
}

std::vector<float> to_f32(const STensor& t, const std::string& what) {
  check_f32(t, what);
  std::vector<float> out((size_t)t.numel());
  copy_f32(t, out.data());
  return out;
}

std::vector<double> to_f64(const STensor& t) {
  std::vector<double> out((size_t)t.numel());
  const uint8_t* p = t.data;
  for (size_t i = 0; i < out.size(); i++) {
    switch (t.dtype) {
      case DType::F32: out[i] = load<float>(p + 4 * i); break;
      case DType::F16: out[i] = half_to_float(load<uint16_t>(p + 2 * i)); break;
      case DType::BF16: out[i] = bf16_value(load<uint16_t>(p + 2 * i)); break;
      case DType::F64: out[i] = load<double>(p + 8 * i); break;
      case DType::I32: out[i] = load<int32_t>(p + 4 * i); break;
      case DType::I64: out[i] = (double)load<int64_t>(p + 8 * i); break;
      case DType::I16: out[i] = load<int16_t>(p + 2 * i); break;
      case DType::I8: out[i] = (int8_t)p[i]; break;
      default: out[i] = p[i]; break;
    }
  }
  return out;
}

std::vector<uint8_t> write_safetensors(const std::vector<OutTensor>& tensors, DType dtype,
                                       const std::map<std::string, std::string>& metadata) {
  size_t es = dtype == DType::BF16 ? 2 : 4;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_quote(k) + ":" + json_quote(v);
      first = false;
    }
    header += "},";
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); i++) {
    const auto& t = tensors[i];
    int64_t n = 1;
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); d++) {
      n *= t.shape[d];
      shape += (d ? "," : "") + std::to_string(t.shape[d]);
    }
    header += (i ? "," : "") + json_quote(t.name) + ":{\"dtype\":\"" + dtype_name(dtype) + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + n * es) + "]}";
    offset += n * es;
  }
  header += "}";
  while ((header.size() + 8) % 8) header.push_back(' ');
  std::vector<uint8_t> out(8 + header.size() + offset);
  uint64_t hlen = header.size();
  std::memcpy(out.data(), &hlen, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  uint8_t* p = out.data() + 8 + header.size();
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (auto d : t.shape) n *= d;
    if (dtype == DType::BF16) {
      for (int64_t i = 0; i < n; i++) {
        uint16_t h = bf16_bits(t.data[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
    } else {
      std::memcpy(p, t.data, n * 4);
    }
    p += n * es;
  }
  return out;
}

}  // namespace temper
