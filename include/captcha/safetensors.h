// Reading and writing the public safetensors layout: an 8-byte little-endian header length, a
// JSON header mapping each tensor name to {dtype, shape, data_offsets} (plus a string-to-string
// "__metadata__"), then the raw little-endian tensor bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace captcha {

enum class DType { kF32, kI64, kU8, kI8 };

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

// A file's bytes, mapped read-only and read in whole at once: copying a file into fresh memory
// costs a page fault per 4 KiB, microseconds each on virtual machines (a 4.5 MB model: 12 ms
// read, 1.3 ms mapped).
class FileBytes {
 public:
  FileBytes() = default;
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(map_); }
  std::size_t size() const { return size_; }

 private:
  friend FileBytes read_model_bytes(const std::string& path, std::uint64_t max_bytes);
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

// The bytes of the file at `path`, refused (ModelFileError naming it) when missing, a folder or
// another file that is not a regular one, unreadable or larger than `max_bytes`, before it is read.
FileBytes read_model_bytes(const std::string& path, std::uint64_t max_bytes = kMaxModelFileBytes);

// Reads and validates the whole file (read_model_bytes, then parse_safetensors).
SafetensorsFile read_safetensors(const std::string& path, std::uint64_t max_bytes = kMaxModelFileBytes);

}  // namespace captcha
