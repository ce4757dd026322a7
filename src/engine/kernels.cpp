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

#define CAPTCHA_TARGET_DECLARATIONS                                                                                   \
  void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,               \
                     float* scratch);                                                                                    \
  void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch);     \
  void quantise_rows(const float* x, std::size_t ldx, int rows, int k, int padded_k, const QuantisedRows& out);         \
  void quantise_rows_wide(const float* x, std::size_t ldx, int rows, const QuantisedMatrix& b, const QuantisedRows& out); \
  void int8_product(const QuantisedRows& a, int rows, const QuantisedMatrix& b, const float* bias, bool accumulate, float* c, \
                    std::size_t ldc, bool relu);
namespace avx2 {
CAPTCHA_TARGET_DECLARATIONS
}
namespace avx512 {
CAPTCHA_TARGET_DECLARATIONS
}
namespace vnni {
void quantise_rows_wide(const float* x, std::size_t ldx, int rows, const QuantisedMatrix& b, const QuantisedRows& out);
void quantise_rows(const float* x, std::size_t ldx, int rows, int k, int padded_k, const QuantisedRows& out);
void int8_product(const QuantisedRows& a, int rows, const QuantisedMatrix& b, const float* bias, bool accumulate, float* c,
                  std::size_t ldc, bool relu);
}
#undef CAPTCHA_TARGET_DECLARATIONS

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

// Whether the int8 product runs on AVX-512 VNNI: the CPU has it and the AVX-512 build is chosen.
bool int8_on_vnni() {
  static const bool vnni = chosen_kernels() == Kernels::kAvx512 && __builtin_cpu_supports("avx512vnni");
  return vnni;
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
  if (!weights.int8.empty()) return quantised_rows_floats(rows, weights.int8.padded_k);
  return weights.padded_out == weights.out ? 0 : static_cast<std::size_t>(rows) * weights.padded_out;
}

void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch) {
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::dense_forward(weights, x, rows, relu, out, scratch);
    case Kernels::kAvx2: return avx2::dense_forward(weights, x, rows, relu, out, scratch);
    case Kernels::kGeneric: return generic::dense_forward(weights, x, rows, relu, out, scratch);
  }
}

std::size_t birnn_direction_scratch_floats(const BiRnnWeights& w, int batch, int steps) {
  // The input projection (of one step for a batch, of every step for one sequence), the
  // recurrent part of one step and the cell states, each gates*hidden per row; on the int8 path,
  // the previous outputs quantised.
  const std::size_t width = static_cast<std::size_t>(w.gates()) * w.hidden;
  const std::size_t projected_rows = birnn_projects_per_step(batch) ? batch : steps;
  const std::size_t state = w.int8() ? quantised_rows_floats(batch, w.recurrent_int8[0].padded_k) : 0;
  return projected_rows * width + batch * width + static_cast<std::size_t>(batch) * w.hidden + state;
}

std::size_t birnn_scratch_floats(const BiRnnWeights& w, int batch, int steps) {
  // Both directions; on the int8 path, also the input rows quantised.
  const std::size_t input = w.int8() ? quantised_rows_floats(batch * steps, w.input_int8[0].padded_k) : 0;
  return 2 * birnn_direction_scratch_floats(w, batch, steps) + input;
}

void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch) {
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::birnn_forward(weights, input, batch, steps, output, scratch);
    case Kernels::kAvx2: return avx2::birnn_forward(weights, input, batch, steps, output, scratch);
    case Kernels::kGeneric: return generic::birnn_forward(weights, input, batch, steps, output, scratch);
  }
}

QuantisedMatrix quantise_matrix(const float* m, std::size_t ld, int k, int cols, bool wide) {
  QuantisedMatrix q;
  q.wide = wide;
  q.k = k, q.cols = cols, q.padded_k = (k + 3) / 4 * 4, q.padded_cols = (cols + 15) / 16 * 16;
  // 16-bit: |sum of padded_k products| <= padded_k * limit^2 < 2^31.
  q.limit = wide ? static_cast<int>(std::min(32767.0, std::floor(std::sqrt(2147483647.0 / q.padded_k)))) : 127;
  q.packed.assign(static_cast<std::size_t>(q.padded_k) * q.padded_cols * (wide ? 2 : 1), 0);
  q.scales.assign(q.padded_cols, 1.0f);
  q.sums.assign(q.padded_cols, 0);
  const int group = q.group_rows();
  for (int j = 0; j < cols; ++j) {
    float largest = 0.0f;
    for (int r = 0; r < k; ++r) largest = std::max(largest, std::abs(m[r * ld + j]));
    if (largest > 0.0f) q.scales[j] = largest / static_cast<float>(q.limit);
    const float inverse = largest > 0.0f ? static_cast<float>(q.limit) / largest : 0.0f;
    // Column j: panel j / 16, lane j % 16 (4 bytes) of each 64-byte group of `group` rows.
    std::int8_t* panel = q.packed.data() + static_cast<std::size_t>(j / 16) * 16 * q.padded_k * (wide ? 2 : 1);
    for (int r = 0; r < k; ++r) {
      const int value = std::min(q.limit, std::max(-q.limit, static_cast<int>(std::lround(m[r * ld + j] * inverse))));
      std::int8_t* lane = panel + (r / group) * 64 + (j % 16) * 4;
      if (wide) {
        const auto v16 = static_cast<std::int16_t>(value);
        std::memcpy(lane + (r % 2) * 2, &v16, sizeof v16);
      } else {
        lane[r % 4] = static_cast<std::int8_t>(value);
        q.sums[j] += value;
      }
    }
  }
  return q;
}

std::size_t quantised_rows_floats(int rows, int padded_k, bool wide) {
  return (static_cast<std::size_t>(rows) * padded_k * (wide ? 2 : 1) + 3) / 4 + 2 * static_cast<std::size_t>(rows);
}

QuantisedRows quantised_rows_in(float* scratch, int rows, int padded_k, bool wide) {
  QuantisedRows q;
  q.values = reinterpret_cast<std::uint8_t*>(scratch);
  q.stride = static_cast<std::size_t>(padded_k) * (wide ? 2 : 1);
  q.scales = scratch + (static_cast<std::size_t>(rows) * q.stride + 3) / 4;
  q.zeros = q.scales + rows;
  q.meta_stride = 1;
  return q;
}

void quantise_rows_wide(const float* x, std::size_t ldx, int rows, const QuantisedMatrix& b, const QuantisedRows& out) {
  if (int8_on_vnni()) return vnni::quantise_rows_wide(x, ldx, rows, b, out);
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::quantise_rows_wide(x, ldx, rows, b, out);
    case Kernels::kAvx2: return avx2::quantise_rows_wide(x, ldx, rows, b, out);
    case Kernels::kGeneric: return generic::quantise_rows_wide(x, ldx, rows, b, out);
  }
}

void quantise_rows(const float* x, std::size_t ldx, int rows, int k, int padded_k, const QuantisedRows& out) {
  if (int8_on_vnni()) return vnni::quantise_rows(x, ldx, rows, k, padded_k, out);
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::quantise_rows(x, ldx, rows, k, padded_k, out);
    case Kernels::kAvx2: return avx2::quantise_rows(x, ldx, rows, k, padded_k, out);
    case Kernels::kGeneric: return generic::quantise_rows(x, ldx, rows, k, padded_k, out);
  }
}

void int8_product(const QuantisedRows& a, int rows, const QuantisedMatrix& b, const float* bias, bool accumulate, float* c,
                  std::size_t ldc, bool relu) {
  if (int8_on_vnni()) return vnni::int8_product(a, rows, b, bias, accumulate, c, ldc, relu);
  switch (chosen_kernels()) {
    case Kernels::kAvx512: return avx512::int8_product(a, rows, b, bias, accumulate, c, ldc, relu);
    case Kernels::kAvx2: return avx2::int8_product(a, rows, b, bias, accumulate, c, ldc, relu);
    case Kernels::kGeneric: return generic::int8_product(a, rows, b, bias, accumulate, c, ldc, relu);
  }
}

const char* int8_kernels_name() { return int8_on_vnni() ? "avx512-vnni" : "plain"; }

void quantise_dense(DenseWeights& weights) {
  weights.int8 = quantise_matrix(weights.weight_t.data(), weights.padded_out, weights.in, weights.out);
  weights.weight_t = {};
  weights.weight_panels = {};
}

void quantise_birnn(BiRnnWeights& w) {
  const int width = w.gates() * w.hidden;
  for (int d = 0; d < 2; ++d) {
    w.input_int8[d] = quantise_matrix(w.input_weights[d].data(), width, w.input, width);
    w.recurrent_int8[d] = quantise_matrix(w.recurrent_weights[d].data(), width, w.hidden, width);
    w.input_weights[d] = w.input_panels[d] = w.recurrent_weights[d] = w.recurrent_panels[d] = {};
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
