// Compiled with -O3 -ffast-math -fopenmp-simd (see CMakeLists.txt) so that the gate loops
// vectorise their exp and tanh through glibc's vector maths.
#include "rnn.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

namespace captcha::engine {

namespace {

inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// out[0..cols) = bias + v[0..rows) . m (rows x cols, row-major).
void vector_times_matrix(const float* v, const float* m, int rows, int cols, const float* bias, float* out) {
  if (bias) std::memcpy(out, bias, sizeof(float) * cols);
  else std::memset(out, 0, sizeof(float) * cols);
  for (int k = 0; k < rows; ++k) {
    const float a = v[k];
    const float* row = m + static_cast<std::size_t>(k) * cols;
#pragma omp simd
    for (int j = 0; j < cols; ++j) out[j] += a * row[j];
  }
}

// One LSTM step for one sequence: `g` the input projection (with both biases), `r` the
// recurrent part, `c` the cell state (updated), `h` the output.
void lstm_gates(const float* g, const float* r, bool first, int hidden, float* c, float* h) {
  const float *gi = g, *gf = g + hidden, *gg = g + 2 * hidden, *go = g + 3 * hidden;
  const float *ri = r, *rf = r + hidden, *rg = r + 2 * hidden, *ro = r + 3 * hidden;
  if (first) {
#pragma omp simd
    for (int k = 0; k < hidden; ++k) {
      c[k] = sigmoid(gi[k]) * std::tanh(gg[k]);
      h[k] = sigmoid(go[k]) * std::tanh(c[k]);
    }
    return;
  }
#pragma omp simd
  for (int k = 0; k < hidden; ++k) {
    c[k] = sigmoid(gf[k] + rf[k]) * c[k] + sigmoid(gi[k] + ri[k]) * std::tanh(gg[k] + rg[k]);
    h[k] = sigmoid(go[k] + ro[k]) * std::tanh(c[k]);
  }
}

// One GRU step (LibTorch's equations: r, z, n gates; the recurrent n part scaled by r).
// `r` holds h_prev . W_hh + b_hh; `h_prev` null at the first step.
void gru_gates(const float* g, const float* r, const float* h_prev, int hidden, float* h) {
  const float *gr = g, *gz = g + hidden, *gn = g + 2 * hidden;
  const float *rr = r, *rz = r + hidden, *rn = r + 2 * hidden;
#pragma omp simd
  for (int k = 0; k < hidden; ++k) {
    const float reset = sigmoid(gr[k] + rr[k]);
    const float update = sigmoid(gz[k] + rz[k]);
    const float candidate = std::tanh(gn[k] + reset * rn[k]);
    h[k] = (1.0f - update) * candidate + update * (h_prev ? h_prev[k] : 0.0f);
  }
}

void direction_forward(const BiRnnWeights& w, int d, const float* input, int batch, int steps, float* output,
                       float* scratch) {
  const int hidden = w.hidden, width = w.gates() * hidden, out_width = 2 * hidden;
  const std::size_t rows = static_cast<std::size_t>(batch) * steps;
  float* projected = scratch;             // rows x width
  float* recurrent = projected + rows * width;  // batch x width
  float* cell = recurrent + static_cast<std::size_t>(batch) * width;  // batch x hidden
  // Input projection for every step at once, bias first.
  for (std::size_t i = 0; i < rows; ++i)
    std::memcpy(projected + i * width, w.input_bias[d].data(), sizeof(float) * width);
  dnnl::sgemm('N', 'N', rows, width, w.input, 1.0f, input, w.input, w.input_weights[d].data(), width, 1.0f,
              projected, width);
  const float* recurrent_bias = w.gru ? w.recurrent_bias[d].data() : nullptr;
  for (int s = 0; s < steps; ++s) {
    const int t = d == 0 ? s : steps - 1 - s;
    const int previous = d == 0 ? t - 1 : t + 1;
    const bool first = s == 0;
    // h_prev of sequence n: output[n][previous][d * hidden ...].
    const float* h_prev = output + static_cast<std::size_t>(previous) * out_width + d * hidden;
    const std::size_t h_stride = static_cast<std::size_t>(steps) * out_width;
    if (first) {
      if (w.gru)
        for (int n = 0; n < batch; ++n) std::memcpy(recurrent + n * width, recurrent_bias, sizeof(float) * width);
    } else if (batch == 1) {
      vector_times_matrix(h_prev, w.recurrent_weights[d].data(), hidden, width, recurrent_bias, recurrent);
    } else {
      for (int n = 0; n < batch && recurrent_bias; ++n)
        std::memcpy(recurrent + n * width, recurrent_bias, sizeof(float) * width);
      dnnl::sgemm('N', 'N', batch, width, hidden, 1.0f, h_prev, h_stride, w.recurrent_weights[d].data(), width,
                  recurrent_bias ? 1.0f : 0.0f, recurrent, width);
    }
    for (int n = 0; n < batch; ++n) {
      const float* g = projected + (static_cast<std::size_t>(n) * steps + t) * width;
      float* h = output + (static_cast<std::size_t>(n) * steps + t) * out_width + d * hidden;
      if (w.gru) gru_gates(g, recurrent + n * width, first ? nullptr : h_prev + n * h_stride, hidden, h);
      else lstm_gates(g, recurrent + n * width, first, hidden, cell + n * hidden, h);
    }
  }
}

std::size_t direction_scratch_floats(const BiRnnWeights& w, int batch, int steps) {
  const std::size_t width = static_cast<std::size_t>(w.gates()) * w.hidden;
  return static_cast<std::size_t>(batch) * steps * width + batch * width + static_cast<std::size_t>(batch) * w.hidden;
}

}  // namespace

std::size_t birnn_scratch_floats(const BiRnnWeights& weights, int batch, int steps) {
  return 2 * direction_scratch_floats(weights, batch, steps);
}

void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch) {
  const std::size_t per_direction = direction_scratch_floats(weights, batch, steps);
  // The directions are independent: one thread each (GEMMs inside run on that thread).
#pragma omp parallel for num_threads(2) schedule(static, 1) if (omp_get_max_threads() > 1)
  for (int d = 0; d < 2; ++d)
    direction_forward(weights, d, input, batch, steps, output, scratch + d * per_direction);
}

}  // namespace captcha::engine
