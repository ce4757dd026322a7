// The kernels for any x86-64 machine, and the dispatch to the AVX2 + FMA build of the same
// code (kernels_avx2.cpp) or the AVX-512 build (kernels_avx512.cpp), the widest the CPU has.
#include "kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#define CAPTCHA_KERNELS_TARGET generic
#include "kernels.inc"
#undef CAPTCHA_KERNELS_TARGET

namespace captcha::engine {

namespace avx2 {
void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch);
void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch);
}
namespace avx512 {
void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch);
void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch);
}

namespace {

enum class Kernels { kGeneric, kAvx2, kAvx512 };

// The widest the CPU has, or CAPTCHA_ENGINE_KERNELS (generic, avx2, avx512) where it names one
// the CPU has: to measure and test the narrower builds on a wider CPU.
Kernels choose_kernels() {
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  const char* asked = std::getenv("CAPTCHA_ENGINE_KERNELS");
  const std::string wanted = asked ? asked : "";
  if (wanted == "generic") return Kernels::kGeneric;
  if (wanted == "avx2" && avx2) return Kernels::kAvx2;
  return avx512 ? Kernels::kAvx512 : avx2 ? Kernels::kAvx2 : Kernels::kGeneric;
}

// Chosen on first use (not at static initialisation, which other translation units may precede).
Kernels chosen_kernels() {
  static const Kernels kernels = choose_kernels();
  return kernels;
}

// A row-major rows x cols matrix (cols a multiple of 16) as cols/16 contiguous panels of rows x 16.
std::vector<float> pack_panels(const std::vector<float>& m, int rows, int cols) {
  std::vector<float> panels(m.size());
  float* out = panels.data();
  for (int j = 0; j < cols; j += 16)
    for (int r = 0; r < rows; ++r, out += 16) std::memcpy(out, m.data() + static_cast<std::size_t>(r) * cols + j, sizeof(float) * 16);
  return panels;
}

}  // namespace

void pack_birnn_panels(BiRnnWeights& w) {
  const int width = w.gates() * w.hidden;
  if (width % 16 != 0) return;
  for (int d = 0; d < 2; ++d) {
    w.input_panels[d] = pack_panels(w.input_weights[d], w.input, width);
    w.recurrent_panels[d] = pack_panels(w.recurrent_weights[d], w.hidden, width);
  }
}

void transpose(const float* m, int rows, int cols, float* out, std::size_t out_stride) {
  constexpr int kBlock = 32;
  for (int r0 = 0; r0 < rows; r0 += kBlock)
    for (int c0 = 0; c0 < cols; c0 += kBlock) {
      const int r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
      for (int c = c0; c < c1; ++c)
        for (int r = r0; r < r1; ++r) out[c * out_stride + r] = m[static_cast<std::size_t>(r) * cols + c];
    }
}

DenseWeights prepare_dense(const std::vector<float>& weight, const std::vector<float>& bias, int in, int out) {
  DenseWeights d;
  d.in = in, d.out = out, d.padded_out = (out + 15) / 16 * 16;
  d.weight_t.assign(static_cast<std::size_t>(in) * d.padded_out, 0.0f);
  d.bias.assign(d.padded_out, 0.0f);
  std::copy(bias.begin(), bias.begin() + out, d.bias.begin());
  transpose(weight.data(), out, in, d.weight_t.data(), d.padded_out);
  d.weight_panels = pack_panels(d.weight_t, in, d.padded_out);
  return d;
}

std::size_t dense_scratch_floats(const DenseWeights& weights, int rows) {
  return weights.padded_out == weights.out ? 0 : static_cast<std::size_t>(rows) * weights.padded_out;
}

void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch) {
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::dense_forward(weights, x, rows, relu, out, scratch);
    case Kernels::kAvx2: return avx2::dense_forward(weights, x, rows, relu, out, scratch);
    case Kernels::kGeneric: return generic::dense_forward(weights, x, rows, relu, out, scratch);
  }
}

std::size_t birnn_scratch_floats(const BiRnnWeights& w, int batch, int steps) {
  // Per direction: the input projection (of one step for a batch, of every step for one
  // sequence), the recurrent part of one step and the cell states, each gates*hidden per row.
  const std::size_t width = static_cast<std::size_t>(w.gates()) * w.hidden;
  const std::size_t projected_rows = birnn_projects_per_step(batch) ? batch : steps;
  return 2 * (projected_rows * width + batch * width + static_cast<std::size_t>(batch) * w.hidden);
}

void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch) {
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::birnn_forward(weights, input, batch, steps, output, scratch);
    case Kernels::kAvx2: return avx2::birnn_forward(weights, input, batch, steps, output, scratch);
    case Kernels::kGeneric: return generic::birnn_forward(weights, input, batch, steps, output, scratch);
  }
}

const char* kernels_name() {
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return "avx512";
    case Kernels::kAvx2: return "avx2";
    case Kernels::kGeneric: return "generic";
  }
  return "generic";
}

}  // namespace captcha::engine
