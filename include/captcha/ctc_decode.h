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
  // One entry per decoded symbol, filled by decode_logits: see case_probabilities().
  std::vector<float> case_probabilities;
};

// In-place softmax of each row of `logits`. Classes whose `allowed` entry is false get
// probability 0 (an empty `allowed` allows all). The blank is always allowed.
void softmax_rows(std::vector<float>& logits, int time_steps, int num_classes,
                  const std::vector<bool>& allowed = {});

// Best path: argmax per time step, merge repeats, drop blanks.
DecodedText greedy_decode(const float* probabilities, int time_steps, int num_classes,
                          const Charset& charset);

// The label lengths a reading may have (symbols, inclusive); 0 leaves that side open.
struct LengthRange {
  int min = 0;
  int max = 0;
  bool contains(std::size_t length) const {
    return (min <= 0 || length >= static_cast<std::size_t>(min)) && (max <= 0 || length <= static_cast<std::size_t>(max));
  }
};

// CTC prefix beam search keeping `beam_width` prefixes; returns the most probable labelling
// whose length is in `lengths` (the most probable of any length where the beam holds none).
// Its confidence is that labelling's share of the probability mass kept in the beam.
DecodedText beam_decode(const float* probabilities, int time_steps, int num_classes,
                        const Charset& charset, int beam_width, LengthRange lengths = {});

// The probability of a labelling (class indices, no blanks): the sum over all of its alignments
// (the CTC forward pass).
double labelling_probability(const float* probabilities, int time_steps, int num_classes,
                             const std::vector<int>& classes);

// The reading. beam_width <= 1: the best path where its length is in `lengths`. Otherwise the
// best path's labelling where it holds more than half of all the probability (no other labelling
// can hold more; its confidence is then that probability), else prefix beam search. A best path
// of the wrong length is searched for at least kLengthBeamWidth wide.
inline constexpr int kLengthBeamWidth = 16;
DecodedText decode(const float* probabilities, int time_steps, int num_classes, const Charset& charset,
                   int beam_width, LengthRange lengths = {});

// How sure the reading is of each symbol's case: for a letter whose other case the charset holds,
// P(text) / (P(text) + P(text with that letter's case swapped)), each the sum over all of the
// labelling's alignments; 1 for any other symbol (and for a letter whose other case the
// probabilities rule out, e.g. by an allowed mask). About 0.5 where the glyph does not show its
// case (c/C, o/O, s/S drawn alone).
std::vector<float> case_probabilities(const float* probabilities, int time_steps, int num_classes,
                                      const Charset& charset, const std::string& text);

// Allowed-class mask for softmax_rows from a string of allowed symbols (empty: all allowed).
std::vector<bool> allowed_mask(const Charset& charset, const std::string& allowed_symbols);

// Decodes a batch of logits, row-major batch x time_steps x num_classes: softmax_rows (with
// `allowed`), then decode() each with `beam_width` and `lengths`, with its case_probabilities.
std::vector<DecodedText> decode_logits(const float* logits, int batch, int time_steps, int num_classes,
                                       const Charset& charset, int beam_width,
                                       const std::vector<bool>& allowed = {}, LengthRange lengths = {});

}  // namespace captcha
