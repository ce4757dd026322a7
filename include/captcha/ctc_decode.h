// CTC decoding of per-time-step class probabilities (class 0 = blank).
//
// Input layout everywhere: row-major [time_steps x num_classes] probabilities, each row summing
// to one (apply softmax_rows first when holding logits).
#pragma once

#include <string>
#include <vector>

#include "captcha/charset.h"

namespace captcha {

struct DecodedText {
  std::string text;
  // One entry per decoded symbol: the probability the model gave that symbol (the highest
  // probability among the time steps that emitted it).
  std::vector<float> char_probabilities;
  // Product of char_probabilities (1 for an empty reading).
  float confidence = 1.0f;
};

// In-place softmax of each row of `logits`. Classes whose `allowed` entry is false get
// probability 0 (an empty `allowed` allows all). The blank is always allowed.
void softmax_rows(std::vector<float>& logits, int time_steps, int num_classes,
                  const std::vector<bool>& allowed = {});

// Best path: argmax per time step, merge repeats, drop blanks.
DecodedText greedy_decode(const float* probabilities, int time_steps, int num_classes,
                          const Charset& charset);

// CTC prefix beam search keeping `beam_width` prefixes; returns the most probable labelling.
// Its confidence is that labelling's share of the probability mass kept in the beam.
DecodedText beam_decode(const float* probabilities, int time_steps, int num_classes,
                        const Charset& charset, int beam_width);

// Allowed-class mask for softmax_rows from a string of allowed symbols (empty: all allowed).
std::vector<bool> allowed_mask(const Charset& charset, const std::string& allowed_symbols);

}  // namespace captcha
