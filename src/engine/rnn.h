// Bidirectional LSTM/GRU layers for inference (internal to the engine). oneDNN 2.6 runs RNNs on
// its reference path on AVX2 machines (about 13 GFLOP/s at batch 1 here); these run the input
// projection as one GEMM per direction, the recurrence as one small GEMM (or, at batch 1, a
// matrix-vector product) per step, the gates in vectorised loops, and the two directions on
// two threads.
#pragma once

#include <cstddef>
#include <vector>

namespace captcha::engine {

// LibTorch's gate order (LSTM i,f,g,o; GRU r,z,n), matrices transposed for row-major GEMM.
struct BiRnnWeights {
  bool gru = false;
  int input = 0, hidden = 0;
  std::vector<float> input_weights[2];      // per direction: input x gates*hidden
  std::vector<float> recurrent_weights[2];  // per direction: hidden x gates*hidden
  // LSTM: input_bias holds b_ih + b_hh and recurrent_bias is empty; GRU: b_ih and b_hh.
  std::vector<float> input_bias[2], recurrent_bias[2];
  int gates() const { return gru ? 3 : 4; }
};

// Floats of scratch memory birnn_forward needs.
std::size_t birnn_scratch_floats(const BiRnnWeights& weights, int batch, int steps);

// `input`: batch x steps x weights.input rows; `output`: batch x steps x 2*hidden (forward
// direction first). Zero initial states, as LibTorch's default.
void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch);

}  // namespace captcha::engine
