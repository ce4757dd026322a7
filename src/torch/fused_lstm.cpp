#include "fused_lstm.h"

#include <cmath>

namespace captcha {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// This file is built with -ffast-math, under which exp and tanh of large arguments (past exp's
// overflow near 88) may give inf or NaN, and 1 / (1 + inf) NaN: clamp first, where both have
// long saturated in single precision (a NaN here once ended Gregwar training runs).
inline float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-std::min(std::max(v, -40.0f), 40.0f))); }
inline float bounded_tanh(float v) { return std::tanh(std::min(std::max(v, -20.0f), 20.0f)); }

// Gate activations of one step, in place: `gates` holds i, f, g, o pre-activations per row
// (N x 4H) and receives their activations; the cell and hidden states follow.
void lstm_cell_forward(float* gates, const float* c_prev, float* __restrict c, float* __restrict h, int64_t rows,
                       int64_t hidden) {
  for (int64_t row = 0; row < rows; ++row) {
    float* __restrict i = gates + row * 4 * hidden;
    float* __restrict f = i + hidden;
    float* __restrict g = f + hidden;
    float* __restrict o = g + hidden;
    float* __restrict cr = c + row * hidden;
    float* __restrict hr = h + row * hidden;
#pragma omp simd
    for (int64_t k = 0; k < hidden; ++k) {
      i[k] = sigmoid(i[k]);
      f[k] = sigmoid(f[k]);
      g[k] = bounded_tanh(g[k]);
      o[k] = sigmoid(o[k]);
    }
    if (c_prev) {
      const float* __restrict cp = c_prev + row * hidden;
#pragma omp simd
      for (int64_t k = 0; k < hidden; ++k) cr[k] = f[k] * cp[k] + i[k] * g[k];
    } else {
#pragma omp simd
      for (int64_t k = 0; k < hidden; ++k) cr[k] = i[k] * g[k];
    }
#pragma omp simd
    for (int64_t k = 0; k < hidden; ++k) hr[k] = o[k] * bounded_tanh(cr[k]);
  }
}

// Gradients of one step's gate pre-activations (N x 4H) from the gradient reaching its hidden
// state (`dh`: from the output plus from the next step) and its cell state (`dc`, updated in
// place to the gradient reaching the previous cell state).
void lstm_cell_backward(const float* activations, const float* __restrict c, const float* __restrict c_prev,
                        const float* __restrict dh_out, const float* __restrict dh_next, float* __restrict dc,
                        float* dgates, int64_t rows, int64_t hidden) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* __restrict i = activations + row * 4 * hidden;
    const float* __restrict f = i + hidden;
    const float* __restrict g = f + hidden;
    const float* __restrict o = g + hidden;
    float* __restrict di = dgates + row * 4 * hidden;
    float* __restrict df = di + hidden;
    float* __restrict dg = df + hidden;
    float* __restrict d_o = dg + hidden;
    const int64_t base = row * hidden;
#pragma omp simd
    for (int64_t k = 0; k < hidden; ++k) {
      const float tc = bounded_tanh(c[base + k]);
      const float dh = dh_out[base + k] + dh_next[base + k];
      const float dcell = dc[base + k] + dh * o[k] * (1 - tc * tc);
      const float cp = c_prev ? c_prev[base + k] : 0.0f;
      di[k] = dcell * g[k] * i[k] * (1 - i[k]);
      df[k] = dcell * cp * f[k] * (1 - f[k]);
      dg[k] = dcell * i[k] * (1 - g[k] * g[k]);
      d_o[k] = dh * tc * o[k] * (1 - o[k]);
      dc[base + k] = dcell * f[k];
    }
  }
}

class LstmDirection : public torch::autograd::Function<LstmDirection> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh, const torch::Tensor& b_ih, const torch::Tensor& b_hh,
                               bool reverse) {
    const int64_t n = x.size(0), steps = x.size(1), features = x.size(2), hidden = w_hh.size(1);
    const auto xt = x.transpose(0, 1).contiguous();  // T x N x F: each step's rows together
    // The input projections of every step in one product, both biases added: T x N x 4H.
    auto gates = torch::addmm(b_ih + b_hh, xt.view({steps * n, features}), w_ih.t()).view({steps, n, 4 * hidden});
    auto cells = torch::empty({steps, n, hidden}, x.options());
    auto outputs = torch::empty({steps, n, hidden}, x.options());
    const auto w_hh_t = w_hh.t();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = reverse ? steps - 1 - s : s, previous = reverse ? t + 1 : t - 1;
      auto step_gates = gates[t];
      if (s > 0) step_gates.addmm_(outputs[previous], w_hh_t);
      lstm_cell_forward(step_gates.data_ptr<float>(), s > 0 ? cells[previous].data_ptr<float>() : nullptr,
                        cells[t].data_ptr<float>(), outputs[t].data_ptr<float>(), n, hidden);
    }
    ctx->save_for_backward({xt, w_ih, w_hh, gates, cells, outputs});
    ctx->saved_data["reverse"] = reverse;
    return outputs.transpose(0, 1).contiguous();
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &xt = saved[0], &w_ih = saved[1], &w_hh = saved[2], &activations = saved[3], &cells = saved[4],
               &outputs = saved[5];
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const int64_t steps = xt.size(0), n = xt.size(1), features = xt.size(2), hidden = w_hh.size(1);
    const auto dh_out = grad_outputs[0].transpose(0, 1).contiguous();  // T x N x H
    auto dgates = torch::empty({steps, n, 4 * hidden}, xt.options());
    auto dh_next = torch::zeros({n, hidden}, xt.options());
    auto dc = torch::zeros({n, hidden}, xt.options());
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t t = reverse ? steps - 1 - s : s, previous = reverse ? t + 1 : t - 1;
      auto step_dgates = dgates[t];
      lstm_cell_backward(activations[t].data_ptr<float>(), cells[t].data_ptr<float>(),
                         s > 0 ? cells[previous].data_ptr<float>() : nullptr, dh_out[t].data_ptr<float>(),
                         dh_next.data_ptr<float>(), dc.data_ptr<float>(), step_dgates.data_ptr<float>(), n, hidden);
      if (s > 0) torch::mm_out(dh_next, step_dgates, w_hh);
    }
    // Each step's previous hidden state (zero before the first), for the recurrent weights.
    auto h_previous = torch::zeros_like(outputs);
    if (steps > 1) {
      if (reverse)
        h_previous.narrow(0, 0, steps - 1).copy_(outputs.narrow(0, 1, steps - 1));
      else
        h_previous.narrow(0, 1, steps - 1).copy_(outputs.narrow(0, 0, steps - 1));
    }
    const auto dg = dgates.view({steps * n, 4 * hidden});
    auto d_w_ih = dg.t().mm(xt.view({steps * n, features}));
    auto d_w_hh = dg.t().mm(h_previous.view({steps * n, hidden}));
    auto d_bias = dg.sum(0);
    auto dx = dg.mm(w_ih).view({steps, n, features}).transpose(0, 1);
    return {dx, d_w_ih, d_w_hh, d_bias, d_bias.clone(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_lstm_direction(const torch::Tensor& x, const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                                   const torch::Tensor& b_ih, const torch::Tensor& b_hh, bool reverse) {
  return LstmDirection::apply(x, w_ih, w_hh, b_ih, b_hh, reverse);
}

torch::Tensor fused_bilstm(torch::nn::LSTM& lstm, const torch::Tensor& x) {
  const auto& o = lstm->options;
  const bool fusable = x.dim() == 3 && x.scalar_type() == torch::kFloat && x.device().is_cpu() && o.num_layers() == 1 &&
                       o.bidirectional() && o.batch_first() && o.bias() && o.proj_size() == 0;
  if (!fusable) return std::get<0>(lstm->forward(x));
  const auto p = lstm->named_parameters(/*recurse=*/false);
  const auto direction = [&](const std::string& suffix, bool reverse) {
    return fused_lstm_direction(x, p["weight_ih_l0" + suffix], p["weight_hh_l0" + suffix], p["bias_ih_l0" + suffix],
                                p["bias_hh_l0" + suffix], reverse);
  };
  return torch::cat({direction("", false), direction("_reverse", true)}, 2);
}

}  // namespace captcha
