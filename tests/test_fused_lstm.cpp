// The fused LSTM against LibTorch's own: the same outputs and the same gradients (input, every
// weight and bias) for both directions, with one or several rows and steps.
#include "torch/fused_lstm.h"

#include <gtest/gtest.h>

namespace captcha {
namespace {

struct Shape {
  int64_t batch, steps, features, hidden;
};

class FusedLstm : public ::testing::TestWithParam<Shape> {};

// Gradients of sum(output * weights_of_output) with respect to the input and the parameters.
std::vector<torch::Tensor> gradients(const torch::Tensor& output, const torch::Tensor& probe, const torch::Tensor& x,
                                     torch::nn::LSTM& lstm) {
  std::vector<torch::Tensor> inputs{x};
  for (const auto& p : lstm->parameters()) inputs.push_back(p);
  return torch::autograd::grad({(output * probe).sum()}, inputs);
}

TEST_P(FusedLstm, MatchesLibTorchForwardAndBackward) {
  const Shape s = GetParam();
  torch::manual_seed(7);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(s.features, s.hidden).batch_first(true).bidirectional(true));
  {
    torch::NoGradGuard no_grad;  // non-zero biases, so that every bias gradient path is checked
    for (auto& p : lstm->parameters()) p.uniform_(-0.5, 0.5);
  }
  const auto x = torch::randn({s.batch, s.steps, s.features}).requires_grad_(true);
  const auto reference = std::get<0>(lstm->forward(x));
  const auto fused = fused_bilstm(lstm, x);
  ASSERT_EQ(fused.sizes(), reference.sizes());
  EXPECT_LT((fused - reference).abs().max().item<float>(), 1e-5f);

  const auto probe = torch::randn(reference.sizes());
  const auto expected = gradients(reference, probe, x, lstm);
  const auto actual = gradients(fused, probe, x, lstm);
  ASSERT_EQ(actual.size(), expected.size());
  const auto names = lstm->named_parameters().keys();
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const std::string what = k == 0 ? "input" : names[k - 1];
    ASSERT_TRUE(actual[k].defined()) << what;
    const float scale = std::max(1.0f, expected[k].abs().max().item<float>());
    EXPECT_LT((actual[k] - expected[k]).abs().max().item<float>() / scale, 1e-5f) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedLstm,
                         ::testing::Values(Shape{1, 1, 3, 2}, Shape{1, 9, 5, 4}, Shape{6, 13, 7, 8},
                                           Shape{16, 50, 64, 32}));

TEST(FusedLstmSaturation, LargeGatePreActivationsGiveFiniteStatesAndGradients) {
  // Pre-activations far beyond the range where exp overflows (|v| > 88): the gates saturate at
  // 0 or 1 and the states stay finite, as in LibTorch's LSTM.
  torch::manual_seed(11);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(8, 16).batch_first(true).bidirectional(true));
  const auto x = (torch::randn({4, 12, 8}) * 500).requires_grad_(true);
  const auto reference = std::get<0>(lstm->forward(x));
  const auto fused = fused_bilstm(lstm, x);
  ASSERT_TRUE(torch::isfinite(reference).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(fused).all().item<bool>());
  EXPECT_LT((fused - reference).abs().max().item<float>(), 1e-5f);
  const auto probe = torch::randn(reference.sizes());
  const auto expected = gradients(reference, probe, x, lstm);
  const auto actual = gradients(fused, probe, x, lstm);
  for (std::size_t k = 0; k < expected.size(); ++k) {
    EXPECT_TRUE(torch::isfinite(actual[k]).all().item<bool>()) << k;
    const float scale = std::max(1.0f, expected[k].abs().max().item<float>());
    EXPECT_LT((actual[k] - expected[k]).abs().max().item<float>() / scale, 1e-4f) << k;
  }
}

TEST(FusedLstmFallback, OtherLayoutsUseTheModule) {
  // Not batch first: the module's own path, same result as calling it.
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 4).bidirectional(true));
  const auto x = torch::randn({5, 2, 3});
  EXPECT_TRUE(torch::equal(fused_bilstm(lstm, x), std::get<0>(lstm->forward(x))));
}

}  // namespace
}  // namespace captcha
