// The RNN kernels for any x86-64 machine, and the dispatch to the AVX2 + FMA build of the same
// code (rnn_avx2.cpp) where the CPU has both.
#include "rnn.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

#define CAPTCHA_RNN_TARGET generic
#include "rnn_kernels.inc"
#undef CAPTCHA_RNN_TARGET

namespace captcha::engine {

namespace avx2 {
void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch);
}

std::size_t birnn_scratch_floats(const BiRnnWeights& w, int batch, int steps) {
  // Per direction: the input projection (batch x steps x gates*hidden), the recurrent part of
  // one step (batch x gates*hidden) and the cell states (batch x hidden).
  const std::size_t width = static_cast<std::size_t>(w.gates()) * w.hidden;
  return 2 * (static_cast<std::size_t>(batch) * steps * width + batch * width + static_cast<std::size_t>(batch) * w.hidden);
}

void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) avx2::birnn_forward(weights, input, batch, steps, output, scratch);
  else generic::birnn_forward(weights, input, batch, steps, output, scratch);
}

}  // namespace captcha::engine
