// The inference engine: runs a model file's network without LibTorch, on its own kernels (the
// small network's 3x3 convolutions fused, by Winograd, on AVX2 or AVX-512; other convolutions
// as products of their input patches; the fully connected, LSTM and GRU layers). Batch norm is folded into the convolutions at load. The LibTorch
// forward pass (captcha_torch) is its reference in tests.
//
//   captcha::InferenceNetwork network(captcha::load_model("m.safetensors"), "m.safetensors");
//   std::vector<float> logits = network.forward(images, batch, width);  // batch x steps x classes
//
// One InferenceNetwork may be used from several threads at once: each call takes an idle
// execution plan for its input shape (or builds one), so calls never share buffers. A batch is
// run in pieces of powers of two (45 = 32 + 8 + 4 + 1), so that callers whose batch sizes vary
// (a service gathering requests) reuse a handful of plans instead of building one per size.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "captcha/model_file.h"

namespace captcha {

// The arithmetic of the fully connected and recurrent layers' products. kInt8: their weights
// quantised at load to 8 bits per output channel (scale = largest magnitude / 127), their
// inputs quantised per row as they run (unsigned 8 bits over the row's range), the products
// summed exactly in 32 bits (AVX-512 VNNI where the CPU has it) and scaled back; the
// convolutions, the gates and the classifier stay float.
enum class Precision { kFloat32, kInt8 };

class InferenceNetwork {
 public:
  // Copies (and folds) the weights it needs from `model`; throws ModelFileError naming `path`
  // when a tensor is missing or has the wrong shape for the model's architecture. An int8 model
  // file (ModelFile::int8) runs with kInt8 whatever `precision` says.
  InferenceNetwork(const ModelFile& model, const std::string& path, Precision precision = Precision::kFloat32);
  ~InferenceNetwork();
  InferenceNetwork(InferenceNetwork&&) noexcept;
  InferenceNetwork& operator=(InferenceNetwork&&) noexcept;

  int num_classes() const;
  int height() const;
  // Time steps the network emits for an input `width` pixels wide.
  int time_steps(int width) const;

  // `images`: batch x height x width normalised values (see normalise_into). Returns the logits,
  // batch x time_steps(width) x num_classes, row-major. Runs on the calling thread's engine
  // threads (set_inference_threads), except a pass of one or two images 20 ms or more after that
  // thread's last one: it runs on the calling thread alone, the others being asleep by then.
  std::vector<float> forward(const float* images, int batch, int width) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The build of the engine's own kernels this CPU runs: "avx512", "avx2" or "generic" (the widest
// it has, unless CAPTCHA_ENGINE_KERNELS names a narrower one).
std::string inference_kernels();
// The int8 products' build: "avx512-vnni" (AVX-512 kernels on a CPU with VNNI) or "plain".
std::string int8_kernels();

// Threads the engine's parallel loops use from the calling thread on (<= 0: every core).
void set_inference_threads(int threads);

}  // namespace captcha
