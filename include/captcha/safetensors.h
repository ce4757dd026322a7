// Reading and writing the public safetensors layout: an 8-byte little-endian header length, a
// JSON header mapping each tensor name to {dtype, shape, data_offsets} (plus a string-to-string
// "__metadata__"), then the raw little-endian tensor bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace captcha {

enum class DType { kF32, kI64, kU8 };

struct Tensor {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;

  std::int64_t numel() const;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
  static Tensor from_f32(std::vector<std::int64_t> shape, const float* values);
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;
};

// Writes to `path` through a temporary file and a rename. Throws ModelFileError.
void write_safetensors(const std::string& path, const SafetensorsFile& file);

// Reads and validates the whole file. Throws ModelFileError naming `path` when it is missing,
// truncated, not safetensors, or its offsets and sizes disagree.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace captcha
