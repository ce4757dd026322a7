// Fuzz target: the safetensors layout and the model file's metadata, from bytes.
//
// Every input ends in a ModelFile or a ModelFileError: the header length, the JSON header, each
// tensor's dtype, shape and offsets (no size product may wrap), then the model metadata (format,
// charset, preprocessing, architecture bounds, label lengths, reading views) and the network
// description the architecture gives.
#include <cstdint>
#include <cstdlib>

#include "captcha/errors.h"
#include "captcha/model_file.h"
#include "captcha/network_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  try {
    const SafetensorsFile file = parse_safetensors(data, size, "input");
    for (const auto& [name, tensor] : file.tensors) {
      const std::size_t element = tensor.dtype == DType::kF32 ? 4 : tensor.dtype == DType::kI64 ? 8 : 1;
      if (tensor.bytes.size() != static_cast<std::size_t>(tensor.numel()) * element) std::abort();
    }
    const ModelFile model = parse_model(data, size, "input");
    const NetworkSpec spec = network_spec(model.config, model.preprocess.height, model.charset.num_classes());
    check_weights(spec, model.tensors, "input");
  } catch (const Error&) {
  }
  return 0;
}
