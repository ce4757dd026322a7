// The convolutional front of the "small" network for inference, on AVX2 + FMA (internal to the
// engine; the oneDNN path serves other machines and architectures):
//   conv1 (1 -> c1, 3x3) + bias + 2x2 max pool + ReLU in one pass (no full-size activation is
//   ever written), and
//   conv2 (c1 -> c2, 3x3) by Winograd F(4x4, 3x3) (4x fewer multiplications than direct), whose
//   4x4 output tiles are four whole pooling windows: bias, max pool and ReLU happen in the
//   output transform, which writes the dense layer's input rows directly.
// Only the conv outputs that pooling keeps are written (an odd last row or column is skipped).
#pragma once

#include <vector>

namespace captcha::engine {

struct SmallCnnWeights {
  int c1 = 0, c2 = 0;
  std::vector<float> conv1;     // 9 taps x c1
  std::vector<float> bias1;     // c1
  std::vector<float> winograd;  // 36 positions x c1 x c2: G g G^T of each 3x3 kernel
  std::vector<float> bias2;     // c2
};

// True when this CPU has AVX2 and FMA and the channel counts suit the kernels.
bool small_cnn_supported(int c1, int c2);

// From LibTorch layouts: conv1 c1 x 1 x 3 x 3, conv2 c2 x c1 x 3 x 3 (batch norm folded in).
SmallCnnWeights prepare_small_cnn(const std::vector<float>& conv1, const std::vector<float>& bias1,
                                  const std::vector<float>& conv2, const std::vector<float>& bias2, int c1, int c2);

// `images`: n x h x w. `features`: n x w/4 rows of (h/4) x c2 values (height major, channel
// minor): the dense layer's input with its columns permuted to match. `pooled`
// (n x h/2 x w/2 x c1, channels last) is scratch space for conv1's output.
void small_cnn_forward(const SmallCnnWeights& weights, const float* images, int n, int h, int w, float* pooled,
                       float* features);

}  // namespace captcha::engine
