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
#include <cstdint>
#include <vector>

namespace captcha::engine {

// A weight matrix (k x cols) in integers for the int8 path: column j holds round(w / scales[j]),
// scales[j] being its largest magnitude / `limit`. 8-bit (limit 127) for products with rows
// quantised to unsigned 8 bits (quantise_rows), or 16-bit (`wide`) for products with rows
// quantised to signed 16 bits (quantise_rows_wide), where the limit keeps every sum of k
// products within 32 bits. Packed for the VNNI dot products (4 unsigned bytes times 4 signed
// bytes, or 2 x 2 signed 16-bit values, summed into 32 bits): panels of 16 columns, each made
// of 64-byte groups, a group holding 4 (2 if wide) consecutive rows of each of the 16 columns.
// The plain products read the same layout.
struct QuantisedMatrix {
  bool wide = false;
  int k = 0, cols = 0, padded_k = 0, padded_cols = 0;  // padded to multiples of 4 and 16
  int limit = 127;
  std::vector<std::int8_t> packed;
  std::vector<float> scales;       // padded_cols
  std::vector<std::int32_t> sums;  // padded_cols: the sum of each column's values (8-bit only)
  bool empty() const { return packed.empty(); }
  int group_rows() const { return wide ? 2 : 4; }
};

// `m` (k x cols, rows `ld` floats apart) quantised to 8 bits, or to 16 bits where `wide`.
QuantisedMatrix quantise_matrix(const float* m, std::size_t ld, int k, int cols, bool wide = false);

// Activations quantised per row to unsigned 8 bits (quantise_rows): x = scale * (q - zero), the
// row's range [min(x, 0), max(x, 0)] spread over 0..255; or to signed 16 bits
// (quantise_rows_wide, zero points 0). Row i: values + i * stride bytes, its scale
// and zero point at scales[i * meta_stride] and zeros[i * meta_stride] (zero points are whole
// numbers, held as floats).
struct QuantisedRows {
  std::uint8_t* values = nullptr;
  std::size_t stride = 0;
  float* scales = nullptr;
  float* zeros = nullptr;
  std::size_t meta_stride = 1;
  QuantisedRows row(std::size_t i) const {
    return {values + i * stride, stride, scales + i * meta_stride, zeros + i * meta_stride, meta_stride};
  }
};

// Floats of scratch memory for `rows` rows of `padded_k` quantised values (16-bit where
// `wide`), and the rows laid out in it (meta_stride 1).
std::size_t quantised_rows_floats(int rows, int padded_k, bool wide = false);
QuantisedRows quantised_rows_in(float* scratch, int rows, int padded_k, bool wide = false);

// Quantises `rows` rows of `k` floats (`ldx` apart) into `out`; the values from k to padded_k
// are set to each row's zero point (they meet zero weights).
void quantise_rows(const float* x, std::size_t ldx, int rows, int k, int padded_k, const QuantisedRows& out);
// The same to signed 16 bits for a wide matrix `b`: x = scale * q, |q| <= b.limit, zero points 0.
void quantise_rows_wide(const float* x, std::size_t ldx, int rows, const QuantisedMatrix& b, const QuantisedRows& out);

// c (rows x b.cols, rows `ldc` floats apart) = bias (or 0; or c's own values where
// `accumulate`) + a . b, the integer products summed exactly and scaled back to floats, then
// ReLU where `relu`; a wide `b` takes rows from quantise_rows_wide. On the VNNI instructions
// (vpdpbusd, vpdpwssd) where the CPU has AVX-512 VNNI, otherwise in plain code.
void int8_product(const QuantisedRows& a, int rows, const QuantisedMatrix& b, const float* bias, bool accumulate, float* c,
                  std::size_t ldc, bool relu = false);

// The int8 product's build: "avx512-vnni" or "plain".
const char* int8_kernels_name();

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
  // The int8 path (quantise_birnn): the input and recurrent weights in 8 bits, the float ones
  // dropped.
  QuantisedMatrix input_int8[2], recurrent_int8[2];
  int gates() const { return gru ? 3 : 4; }
  bool int8() const { return !input_int8[0].empty(); }
};

// Moves a layer to the int8 path: its weights quantised (quantise_matrix) and the float copies
// freed. Its activations are then quantised per row as each product runs.
void quantise_birnn(BiRnnWeights& weights);

// Fills the panel copies of the input and recurrent weights (where gates*hidden is a multiple
// of 16; otherwise they stay empty and the plain GEMM serves). A panel is 16 columns of a
// row-major matrix, stored contiguously: the register-blocked product then reads one cache
// line per row of a panel instead of a line 4*cols bytes from the last (1.8x faster at
// 128 x 512, measured).
void pack_birnn_panels(BiRnnWeights& weights);

// Whether birnn_forward projects the input of each step just before it (a batch) rather than
// of all steps at once (one sequence).
inline bool birnn_projects_per_step(int batch) { return batch > 1; }

// Floats of scratch memory birnn_forward needs, and the part of it each direction uses.
std::size_t birnn_direction_scratch_floats(const BiRnnWeights& weights, int batch, int steps);
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
  QuantisedMatrix int8;               // the int8 path (quantise_dense): weight_t in 8 bits
};

// Moves a layer to the int8 path (see quantise_birnn).
void quantise_dense(DenseWeights& weights);

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
