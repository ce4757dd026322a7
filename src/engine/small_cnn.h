// The convolutional front of the "small" network for inference, on AVX2 + FMA (16 channels a step
// where the AVX-512 kernels are chosen; internal to the engine; the im2col path in inference.cpp
// serves other machines and architectures), for a stack of 3x3,
// stride 1 convolutions, each with its ReLU, batch norm folded in:
//   the first (1 -> c1 channels) with bias + 2x2 max pool + ReLU in one pass (no full-size
//   activation is ever written), and
//   each one after it by Winograd F(4x4, 3x3) (4x fewer multiplications than direct), with
//   bias, ReLU and, where the layer has one, 2x2 max pooling in the output transform (a 4x4
//   output tile is four whole pooling windows). The last writes the dense layer's input rows.
// Only the conv outputs that pooling keeps are written (an odd last row or column is skipped).
#pragma once

#include <cstddef>
#include <vector>

#include "kernels.h"

namespace captcha::engine {

// A 3x3 convolution after the first, prepared for the Winograd product.
struct WinogradConv {
  int in = 0, out = 0;
  bool pool = false;
  std::vector<float> u;     // 36 positions x in x out: G g G^T of each 3x3 kernel
  std::vector<float> bias;  // out
  // The int8 path (quantise_winograd): u in 8 bits, a matrix per position (u then empty). The
  // transformed inputs are then quantised per tile and position as they are multiplied.
  std::vector<QuantisedMatrix> u_int8;
};

// Moves a layer's products to the int8 path.
void quantise_winograd(WinogradConv& layer);

struct SmallCnnWeights {
  int c1 = 0;
  std::vector<float> conv1;  // 9 taps x c1
  std::vector<float> bias1;  // c1
  std::vector<WinogradConv> convs;  // one at least
  int out_channels() const { return convs.empty() ? c1 : convs.back().out; }
};

// True when this CPU has AVX2 and FMA and the kernels take these channel counts: `channels`
// lists each convolution's output channels, the first's first (two convolutions at least).
bool small_cnn_supported(const std::vector<int>& channels);

// From LibTorch layouts: conv1 c1 x 1 x 3 x 3, the others out x in x 3 x 3.
SmallCnnWeights prepare_small_cnn(const std::vector<float>& conv1, const std::vector<float>& bias1, int c1);
WinogradConv prepare_winograd_conv(const std::vector<float>& weight, const std::vector<float>& bias, int in, int out,
                                   bool pool);

// The output map's height and width for n x h x w input images.
void small_cnn_output_size(const SmallCnnWeights& weights, int h, int w, int& out_h, int& out_w);

// Floats of scratch memory small_cnn_forward needs.
std::size_t small_cnn_scratch_floats(const SmallCnnWeights& weights, int n, int h, int w);

// `images`: n x h x w. `features`: n x out_w rows of out_h x out_channels() values (height
// major, channel minor): the dense layer's input with its columns permuted to match.
void small_cnn_forward(const SmallCnnWeights& weights, const float* images, int n, int h, int w, float* scratch,
                       float* features);

}  // namespace captcha::engine
