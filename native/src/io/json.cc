#include "io/json.h"

#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace temper {

const Json* Json::get(const std::string& key) const {
  for (auto& f : fields)
    if (f.first == key) return &f.second;
  return nullptr;
}

namespace {

class Reader {
 public:
  Reader(const char* p, size_t n, const std::string& what) : p_(p), n_(n), what_(what) {}

  Json document() {
    Json v = value(0);
    space();
    if (i_ != n_) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error(what_ + ": invalid JSON at byte " + std::to_string(i_) + ": " + why);
  }
  void space() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) i_++;
  }
  char peek() {
    space();
    if (i_ >= n_) fail("unexpected end");
    return p_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    i_++;
  }
  void literal(const char* word) {
    for (const char* w = word; *w; w++, i_++)
      if (i_ >= n_ || p_[i_] != *w) fail(std::string("expected ") + word);
  }

  Json value(int depth) {
    if (depth > 64) fail("nested too deeply");
    Json v;
    char c = peek();
    if (c == '{') {
      v.kind = Json::Object;
      i_++;
      std::set<std::string> seen;
      if (peek() == '}') {
        i_++;
        return v;
      }
      for (;;) {
        if (peek() != '"') fail("expected a key string");
        std::string key = string();
        if (!seen.insert(key).second) fail("duplicate key \"" + key + "\"");
        expect(':');
        v.fields.emplace_back(std::move(key), value(depth + 1));
        c = peek();
        i_++;
        if (c == '}') break;
        if (c != ',') fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = Json::Array;
      i_++;
      if (peek() == ']') {
        i_++;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        c = peek();
        i_++;
        if (c == ']') break;
        if (c != ',') fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = Json::String;
      v.str = string();
    } else if (c == 't') {
      literal("true");
      v.kind = Json::Bool;
      v.b = true;
    } else if (c == 'f') {
      literal("false");
      v.kind = Json::Bool;
    } else if (c == 'n') {
      literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Number;
      v.num = number();
    } else {
      fail(std::string("unexpected character"));
    }
    return v;
  }

  double number() {
    size_t start = i_;
    if (p_[i_] == '-') i_++;
    auto digits = [&] {
      size_t d = i_;
      while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') i_++;
      if (i_ == d) fail("malformed number");
    };
    digits();
    if (i_ < n_ && p_[i_] == '.') {
      i_++;
      digits();
    }
    if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
      i_++;
      if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) i_++;
      digits();
    }
    std::string text(p_ + start, i_ - start);
    double d = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(d)) fail("number out of range");
    return d;
  }

  unsigned hex4() {
    unsigned u = 0;
    for (int k = 0; k < 4; k++, i_++) {
      if (i_ >= n_) fail("unexpected end in \\u escape");
      char h = p_[i_];
      u <<= 4;
      if (h >= '0' && h <= '9') u |= h - '0';
      else if (h >= 'a' && h <= 'f') u |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') u |= h - 'A' + 10;
      else fail("bad \\u escape");
    }
    return u;
  }

  std::string string() {
    i_++;  // opening quote
    std::string s;
    for (;;) {
      if (i_ >= n_) fail("unterminated string");
      unsigned char c = (unsigned char)p_[i_++];
      if (c == '"') return s;
      if (c < 0x20) fail("control character in string");
      if (c != '\\') {
        s.push_back((char)c);
        continue;
      }
      if (i_ >= n_) fail("unterminated escape");
      char e = p_[i_++];
      switch (e) {
        case '"': s.push_back('"'); break;
        case '\\': s.push_back('\\'); break;
        case '/': s.push_back('/'); break;
        case 'b': s.push_back('\b'); break;
        case 'f': s.push_back('\f'); break;
        case 'n': s.push_back('\n'); break;
        case 'r': s.push_back('\r'); break;
        case 't': s.push_back('\t'); break;
        case 'u': {
          unsigned u = hex4();
          if (u >= 0xD800 && u < 0xDC00) {
            if (i_ + 1 >= n_ || p_[i_] != '\\' || p_[i_ + 1] != 'u') fail("lone surrogate");
            i_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad surrogate pair");
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
          } else if (u >= 0xDC00 && u < 0xE000) {
            fail("lone surrogate");
          }
          if (u < 0x80) {
            s.push_back((char)u);
          } else if (u < 0x800) {
            s.push_back((char)(0xC0 | (u >> 6)));
            s.push_back((char)(0x80 | (u & 0x3F)));
          } else if (u < 0x10000) {
            s.push_back((char)(0xE0 | (u >> 12)));
            s.push_back((char)(0x80 | ((u >> 6) & 0x3F)));
            s.push_back((char)(0x80 | (u & 0x3F)));
          } else {
            s.push_back((char)(0xF0 | (u >> 18)));
            s.push_back((char)(0x80 | ((u >> 12) & 0x3F)));
            s.push_back((char)(0x80 | ((u >> 6) & 0x3F)));
            s.push_back((char)(0x80 | (u & 0x3F)));
          }
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const char* p_;
  size_t n_;
  size_t i_ = 0;
  const std::string& what_;
};

}  // namespace

Json parse_json(const char* data, size_t size, const std::string& what) { return Reader(data, size, what).document(); }

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back((char)c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back((char)c);
    }
  }
  return out + "\"";
}

}  // namespace temper
