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

// Model files larger than this are refused before they are read (the largest architecture the
// model file allows holds well under 1 GiB of weights).
inline constexpr std::uint64_t kMaxModelFileBytes = std::uint64_t{1} << 30;

// Validates and copies out the `size` bytes at `data`, a whole safetensors file. Throws
// ModelFileError naming `name` when they are truncated, not safetensors, or their offsets and
// sizes disagree.
SafetensorsFile parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name);

// The bytes of the file at `path`, refused (ModelFileError naming it) when missing, a folder,
// unreadable or larger than `max_bytes`, before it is read.
std::vector<std::uint8_t> read_model_bytes(const std::string& path,
                                           std::uint64_t max_bytes = kMaxModelFileBytes);

// Reads and validates the whole file (read_model_bytes, then parse_safetensors).
SafetensorsFile read_safetensors(const std::string& path, std::uint64_t max_bytes = kMaxModelFileBytes);

}  // namespace captcha
