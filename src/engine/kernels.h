// The engine's kernels for the fully connected and recurrent layers, also the product of every
// convolution that the fused Winograd kernels do not take (internal to the engine).
// Each is built three times, for any x86-64, for AVX2 + FMA and for AVX-512, and dispatched at
// run time to the widest the CPU has (CAPTCHA_ENGINE_KERNELS=generic|avx2 chooses a narrower
// one, to measure or test it).
//
// Bidirectional LSTM/GRU layers run, per step,
// the input projection and the recurrence as small register-blocked products on weights packed
// at load (at batch 1: the projection of all steps at once and a matrix-vector product per
// step), the gates in vectorised loops, and the two directions on two threads.
#pragma once

#include <cstddef>
#include <vector>

namespace captcha::engine {

// LibTorch's gate order (LSTM i,f,g,o; GRU r,z,n), matrices transposed for row-major GEMM.
struct BiRnnWeights {
  bool gru = false;
  int input = 0, hidden = 0;
  std::vector<float> input_weights[2];      // per direction: input x gates*hidden
  std::vector<float> input_panels[2];       // the same in 16-column panels (pack_birnn_panels)
  std::vector<float> recurrent_weights[2];  // per direction: hidden x gates*hidden
  std::vector<float> recurrent_panels[2];   // the same in 16-column panels (pack_birnn_panels)
  // LSTM: input_bias holds b_ih + b_hh and recurrent_bias is empty; GRU: b_ih and b_hh.
  std::vector<float> input_bias[2], recurrent_bias[2];
  int gates() const { return gru ? 3 : 4; }
};

// Fills the panel copies of the input and recurrent weights (where gates*hidden is a multiple
// of 16; otherwise they stay empty and the plain GEMM serves). A panel is 16 columns of a
// row-major matrix, stored contiguously: the register-blocked product then reads one cache
// line per row of a panel instead of a line 4*cols bytes from the last (1.8x faster at
// 128 x 512, measured).
void pack_birnn_panels(BiRnnWeights& weights);

// Whether birnn_forward projects the input of each step just before it (a batch) rather than
// of all steps at once (one sequence).
inline bool birnn_projects_per_step(int batch) { return batch > 1; }

// Floats of scratch memory birnn_forward needs.
std::size_t birnn_scratch_floats(const BiRnnWeights& weights, int batch, int steps);

// `input`: batch x steps x weights.input rows; `output`: batch x steps x 2*hidden (forward
// direction first). Zero initial states, as LibTorch's default.
void birnn_forward(const BiRnnWeights& weights, const float* input, int batch, int steps, float* output,
                   float* scratch);

// The build the dispatch chose: "avx512", "avx2" or "generic".
const char* kernels_name();

// A fully connected layer, weights transposed (in x padded_out, zero columns beyond `out`) so
// that the columns come in panels of 16.
struct DenseWeights {
  int in = 0, out = 0, padded_out = 0;
  std::vector<float> weight_t, bias;  // in x padded_out, padded_out
  std::vector<float> weight_panels;   // weight_t in 16-column panels (see pack_birnn_panels)
};

// `m` (rows x cols, row-major) transposed into `out` (cols rows, `out_stride` floats apart), in
// blocks that stay in the cache (an element at a time, a matrix of the model's size took
// milliseconds of cache misses at every load).
void transpose(const float* m, int rows, int cols, float* out, std::size_t out_stride);

// From LibTorch's Linear layout (weight out x in).
DenseWeights prepare_dense(const std::vector<float>& weight, const std::vector<float>& bias, int in, int out);

// Floats of scratch memory dense_forward needs for `rows` rows.
std::size_t dense_scratch_floats(const DenseWeights& weights, int rows);

// out (rows x weights.out) = x (rows x weights.in) . W^T + bias, then ReLU if `relu`.
void dense_forward(const DenseWeights& weights, const float* x, int rows, bool relu, float* out, float* scratch);

}  // namespace captcha::engine
