// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw data. The reader trusts nothing in the
// header: every length, offset and shape is checked against the bytes actually present.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/dtype.h"

namespace temper {

struct STensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;  // into the owning SafetensorsFile's bytes
  size_t nbytes;
  int64_t numel() const;
};

struct SafetensorsFile {
  std::string what;  // the file name, for messages
  std::vector<uint8_t> bytes;
  // Or bytes someone else owns and keeps unchanged while the file is in use (a JS buffer
  // held by the call that parses it): no copy of a whole checkpoint on every import.
  const uint8_t* borrowed = nullptr;
  size_t borrowed_size = 0;
  const uint8_t* data() const { return borrowed ? borrowed : bytes.data(); }
  size_t size() const { return borrowed ? borrowed_size : bytes.size(); }
  std::vector<STensor> tensors;
  std::map<std::string, std::string> metadata;
};

std::vector<uint8_t> read_file(const std::string& path);
// Parses in place; throws std::runtime_error naming `what` and the offending tensor.
void parse_safetensors(SafetensorsFile& f);
const char* dtype_name(DType d);
// F32 / F16 / BF16 to fp32; other dtypes are refused because model weights never use them.
std::vector<float> to_f32(const STensor& t, const std::string& what);
// to_f32 in two halves, so that many tensors can be checked before any is written over:
// the dtype and every value finite (else an error naming `what`, the tensor and the element),
// then the values into `out` (numel floats).
void check_f32(const STensor& t, const std::string& what);
void copy_f32(const STensor& t, float* out);
// Elements [begin, end) only, into out[begin, end): slices of one tensor converted in parallel.
void copy_f32(const STensor& t, float* out, size_t begin, size_t end);
// The raw values of any dtype widened to double (for the test-facing reader).
std::vector<double> to_f64(const STensor& t);

struct OutTensor {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
};
// F32 or BF16 (round to nearest even) output with the header padded to 8 bytes.
std::vector<uint8_t> write_safetensors(const std::vector<OutTensor>& tensors, DType dtype,
                                       const std::map<std::string, std::string>& metadata);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace temper
