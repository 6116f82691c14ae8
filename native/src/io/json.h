// A small, strict JSON reader for safetensors headers: bounded depth, every read checked,
// errors say where. Numbers are kept as doubles (safetensors offsets fit in 2^53).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace temper {

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;  // in file order; duplicates are refused

  const Json* get(const std::string& key) const;
};

// Throws std::runtime_error("<what>: ...") on anything that is not one well-formed JSON value.
Json parse_json(const char* data, size_t size, const std::string& what);
std::string json_quote(const std::string& s);

}  // namespace temper
