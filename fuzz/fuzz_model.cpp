// Fuzz target: a model file from outside, loaded by the engine and read with.
//
// Every input ends in readings or a ModelFileError/ConfigError: the Recogniser loads the file
// (safetensors, metadata, architecture bounds, each tensor's presence, shape, dtype and finite
// values, the engine's own plan and packing), then, where the network is small enough to run
// quickly, reads two images with greedy and beam decoding, an allowed set and any length.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "captcha/errors.h"
#include "captcha/model_file.h"
#include "captcha/recogniser.h"
#include "captcha/utf8.h"

namespace {

const std::string& scratch_file() {
  static const std::string path = [] {
    const char* folder = std::getenv("TMPDIR");
    std::string p = std::string(folder && *folder ? folder : "/tmp") + "/captcha-fuzz-model-" +
                    std::to_string(::getpid()) + ".safetensors";
    std::atexit([] { std::remove(scratch_file().c_str()); });
    return p;
  }();
  return path;
}

// Whether reading with `model` stays within a few milliseconds (the fuzzer wants many runs).
bool cheap_to_run(const captcha::ModelFile& model) {
  std::size_t weights = 0;
  for (const auto& [name, tensor] : model.tensors) weights += tensor.bytes.size() / 4;
  return weights <= 200000 && model.preprocess.width * model.preprocess.height <= 256 * 64;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  {
    std::ofstream out(scratch_file(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out.flush()) std::abort();
  }
  try {
    if (!cheap_to_run(parse_model(data, size, scratch_file()))) return 0;
    const Recogniser recogniser(scratch_file(), 1);
    const PreprocessOptions& p = recogniser.model().preprocess;
    Image stripes(p.width, p.height);
    for (int y = 0; y < p.height; ++y)
      for (int x = 0; x < p.width; ++x) stripes.at(x, y) = (x / 3 + y) % 5 ? 230 : 20;
    ReadOptions greedy;
    greedy.beam_width = 0;
    ReadOptions beam;
    beam.beam_width = 8;
    beam.any_length = true;
    beam.allowed = u32_to_utf8(recogniser.model().charset.symbols().substr(0, 2));
    for (const ReadOptions& options : {greedy, beam})
      for (const Image& image : {stripes, Image(p.width, p.height, 1, 255)}) {
        const Reading reading = recogniser.read(image, options);
        if (!(reading.confidence >= 0 && reading.confidence <= 1.0001f)) std::abort();
      }
  } catch (const ModelFileError&) {
  } catch (const ConfigError&) {
  }
  return 0;
}
