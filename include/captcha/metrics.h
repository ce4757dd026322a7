// Recognition metrics: exact match, character error rate, per-character accuracy, confusions.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace captcha {

// Levenshtein distance between two code-point strings.
std::size_t edit_distance(const std::u32string& a, const std::u32string& b);

struct Confusion {
  std::string truth;    // the symbol in the label, "" for an inserted symbol
  std::string reading;  // what was read instead, "" for a dropped symbol
  std::size_t count = 0;
};

// Letters whose reading holds the label's letter in some case, grouped by the reading's case
// probability (see case_probabilities() in ctc_decode.h): how often the case was right there.
// A calibrated model reads about mean_probability of each group in the right case.
struct CaseBin {
  float from = 0, to = 0;        // case probabilities in [from, to); the last bin holds 1
  std::size_t letters = 0;       // letters in the bin
  std::size_t right_case = 0;    // of them, read in the label's case
  double mean_probability = 0;   // their mean case probability
};

struct EvaluationReport {
  std::size_t count = 0;
  double exact_match = 0;                   // fraction of whole strings read exactly
  double exact_match_case_insensitive = 0;  // same, ignoring ASCII case
  std::size_t case_only_errors = 0;         // strings misread only in case (0 when scored ignoring case)
  double cer = 0;            // sum of edit distances / total label characters
  double char_accuracy = 0;  // label characters read correctly (aligned) / total
  std::map<std::string, double> per_char_accuracy;  // by label symbol
  std::vector<Confusion> confusions;                // most frequent first
  // Filled where readings came with case probabilities and case is scored; empty bins omitted.
  std::vector<CaseBin> case_calibration;
};

// The bin edges of EvaluationReport::case_calibration.
inline constexpr float kCaseBinEdges[] = {0.0f, 0.6f, 0.8f, 0.95f, 0.99f, 1.0f};

// Accumulates (truth, reading) pairs, UTF-8.
class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(bool case_insensitive = false)
      : case_insensitive_(case_insensitive) {}
  // `case_probabilities`, where given, holds one entry per symbol of `reading`: its letters
  // then count in the case calibration where they stand, aligned, on a letter of `truth`.
  void add(const std::string& truth, const std::string& reading, const std::vector<float>& case_probabilities = {});
  EvaluationReport report(std::size_t max_confusions = 10) const;

 private:
  void add_case(const std::u32string& truth, const std::u32string& reading, const std::vector<float>& case_probabilities);

  bool case_insensitive_;
  std::size_t count_ = 0, exact_ = 0, exact_ci_ = 0;
  std::size_t edits_ = 0, label_chars_ = 0, correct_chars_ = 0;
  std::map<char32_t, std::pair<std::size_t, std::size_t>> per_char_;  // correct, total
  std::map<std::pair<std::u32string, std::u32string>, std::size_t> confusions_;
  std::vector<CaseBin> case_bins_;
};

}  // namespace captcha
