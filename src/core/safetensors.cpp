// The safetensors layout, read and written without any third-party tensor library.
#include "captcha/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <utility>

#include <nlohmann/json.hpp>

#include "captcha/atomic_file.h"
#include "captcha/errors.h"
#include "captcha/heap.h"
#include "json_fields.h"

namespace captcha {

namespace {

// A header larger than this is taken as a foreign file, not allocated.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kI64: return "I64";
    case DType::kU8: return "U8";
    case DType::kI8: return "I8";
  }
  return "?";
}

std::size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : t == DType::kI64 ? 8 : 1; }

DType parse_dtype(const std::string& name, const std::string& path) {
  if (name == "F32") return DType::kF32;
  if (name == "I64") return DType::kI64;
  if (name == "U8") return DType::kU8;
  if (name == "I8") return DType::kI8;
  throw ModelFileError(path + ": unsupported tensor dtype " + name);
}

}  // namespace

std::int64_t Tensor::numel() const {
  return std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
}

Tensor Tensor::from_f32(std::vector<std::int64_t> shape, const float* values) {
  Tensor t;
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.bytes.resize(static_cast<std::size_t>(t.numel()) * sizeof(float));
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), values, t.bytes.size());
  return t;
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (tensor.bytes.size() != static_cast<std::size_t>(tensor.numel()) * dtype_size(tensor.dtype))
      throw ModelFileError(path + ": tensor " + name + " has the wrong number of bytes");
    header[name] = {{"dtype", dtype_name(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the spec allows
  const std::uint64_t header_size = text.size();

  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw ModelFileError(path + ": cannot open for writing");
    unsigned char size_bytes[8];
    for (int i = 0; i < 8; ++i) size_bytes[i] = static_cast<unsigned char>(header_size >> (8 * i));
    out.write(reinterpret_cast<const char*>(size_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, tensor] : file.tensors)
      out.write(reinterpret_cast<const char*>(tensor.bytes.data()),
                static_cast<std::streamsize>(tensor.bytes.size()));
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      throw ModelFileError(path + ": write failed (disk full?)");
    }
  }
  // On the disk before it replaces the previous file, which stays whole until then.
  if (!sync_to_disk(temporary)) {
    std::remove(temporary.c_str());
    throw ModelFileError(path + ": cannot sync the written file to the disk");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw ModelFileError(path + ": cannot rename the temporary file into place");
  }
  sync_folder_of(path);
}

SafetensorsFile parse_safetensors(const std::uint8_t* data, std::size_t size, const std::string& name) {
  if (size < 8) throw ModelFileError(name + ": too short to be a model file (truncated?)");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | data[i];
  if (header_size == 0 || header_size > kMaxHeaderBytes)
    throw ModelFileError(name + ": not a safetensors model file (bad header length)");
  if (header_size > size - 8)
    throw ModelFileError(name + ": truncated (header runs past the end of the file)");
  const char* text = reinterpret_cast<const char*>(data + 8);
  if (text[0] != '{')
    throw ModelFileError(name + ": not a safetensors model file (header is not JSON)");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + header_size);
  } catch (const nlohmann::json::exception&) {
    throw ModelFileError(name + ": not a safetensors model file (header is not valid JSON)");
  }
  if (!header.is_object()) throw ModelFileError(name + ": header is not a JSON object");

  const std::uint8_t* tensor_data = data + 8 + header_size;
  const std::uint64_t data_size = size - 8 - header_size;
  SafetensorsFile file;
  try {
    for (const auto& [key, entry] : header.items()) {
      if (key == "__metadata__") {
        for (const auto& [field, value] : entry.items()) file.metadata[field] = value.get<std::string>();
        continue;
      }
      Tensor tensor;
      tensor.dtype = parse_dtype(entry.at("dtype").get<std::string>(), name);
      if (!entry.at("shape").is_array() || !entry.at("data_offsets").is_array())
        throw ModelFileError(name + ": tensor " + key + " has no shape or data_offsets list");
      for (const auto& d : entry.at("shape")) tensor.shape.push_back(json_fields::whole_number(d, "shape", 0, INT64_MAX));
      std::vector<std::uint64_t> offsets;
      for (const auto& offset : entry.at("data_offsets"))
        offsets.push_back(static_cast<std::uint64_t>(json_fields::whole_number(offset, "data_offsets", 0, INT64_MAX)));
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        throw ModelFileError(name + ": tensor " + key + " lies outside the file (truncated?)");
      // The shape's byte count, checked at each product: a crafted shape must not wrap around.
      std::uint64_t bytes = dtype_size(tensor.dtype);
      for (auto d : tensor.shape) {
        if (d < 0) throw ModelFileError(name + ": tensor " + key + " has a negative dimension");
        if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(d), &bytes) || bytes > data_size + 1)
          bytes = data_size + 1;  // more than the file holds, whatever the rest multiplies to
      }
      if (offsets[1] - offsets[0] != bytes)
        throw ModelFileError(name + ": tensor " + key + " size does not match its shape");
      tensor.bytes.reserve(offsets[1] - offsets[0]);
      prefault(tensor.bytes.data(), offsets[1] - offsets[0]);
      tensor.bytes.assign(tensor_data + offsets[0], tensor_data + offsets[1]);
      file.tensors.emplace(key, std::move(tensor));
    }
  } catch (const nlohmann::json::exception& e) {
    throw ModelFileError(name + ": malformed safetensors header (" + e.what() + ")");
  } catch (const ConfigError& e) {
    throw ModelFileError(name + ": malformed safetensors header (" + e.what() + ")");
  }
  return file;
}

FileBytes::FileBytes(FileBytes&& other) noexcept
    : map_(std::exchange(other.map_, nullptr)), size_(std::exchange(other.size_, 0)) {}

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  std::swap(map_, other.map_);
  std::swap(size_, other.size_);
  return *this;
}

FileBytes::~FileBytes() {
  if (map_) munmap(map_, size_);
}

FileBytes read_model_bytes(const std::string& path, std::uint64_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelFileError(path + ": cannot open the model file");
  struct stat info {};
  const bool regular = fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
  if (!regular) {
    close(fd);
    throw ModelFileError(path + ": cannot read the model file (a folder?)");
  }
  const auto file_size = static_cast<std::uint64_t>(info.st_size);
  if (file_size > max_bytes) {
    close(fd);
    throw ModelFileError(path + ": " + std::to_string(file_size) + " bytes, over the model file limit of " +
                         std::to_string(max_bytes) + " bytes");
  }
  FileBytes bytes;
  if (file_size > 0) {
    void* map = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
      close(fd);
      throw ModelFileError(path + ": read failed (" + std::strerror(errno) + ")");
    }
    bytes.map_ = map;
    bytes.size_ = file_size;
  }
  close(fd);
  return bytes;
}

SafetensorsFile read_safetensors(const std::string& path, std::uint64_t max_bytes) {
  const FileBytes bytes = read_model_bytes(path, max_bytes);
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

}  // namespace captcha
