// One direction of an LSTM layer as a single autograd node, for float32 tensors on the CPU.
// Internal header (it includes <torch/torch.h>).
//
// LibTorch's LSTM runs every time step as a dozen small operators forward and two dozen in the
// backward pass; at the batch sizes CAPTCHA training uses, their dispatch costs as much as the
// arithmetic. Here the input projections of all time steps are one matrix product, each step is
// one matrix product (the recurrent weights) plus one loop over the gates, and the backward pass
// mirrors that, with the weight gradients of all steps as one matrix product each at the end.
// Same weights, gate order (i, f, g, o) and results as torch::nn::LSTM.
#pragma once

#include <torch/torch.h>

namespace captcha {

// x: N x T x F (batch first). Weights as torch::nn::LSTM names them for one direction:
// w_ih 4H x F, w_hh 4H x H, b_ih and b_hh 4H. Initial state zero. Returns N x T x H; `reverse`
// runs from the last step to the first (the backward half of a bidirectional layer).
torch::Tensor fused_lstm_direction(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                                   const torch::Tensor& b_ih, const torch::Tensor& b_hh, bool reverse);

// A bidirectional single-layer torch::nn::LSTM (batch first) run with fused_lstm_direction:
// N x T x 2H, the forward direction's features first, as the module returns them.
torch::Tensor fused_bilstm(torch::nn::LSTM& lstm, const torch::Tensor& x);

}  // namespace captcha
