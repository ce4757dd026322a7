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

struct EvaluationReport {
  std::size_t count = 0;
  double exact_match = 0;                   // fraction of whole strings read exactly
  double exact_match_case_insensitive = 0;  // same, ignoring ASCII case
  std::size_t case_only_errors = 0;         // strings misread only in case (0 when scored ignoring case)
  double cer = 0;            // sum of edit distances / total label characters
  double char_accuracy = 0;  // label characters read correctly (aligned) / total
  std::map<std::string, double> per_char_accuracy;  // by label symbol
  std::vector<Confusion> confusions;                // most frequent first
};

// Accumulates (truth, reading) pairs, UTF-8.
class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(bool case_insensitive = false)
      : case_insensitive_(case_insensitive) {}
  void add(const std::string& truth, const std::string& reading);
  EvaluationReport report(std::size_t max_confusions = 10) const;

 private:
  bool case_insensitive_;
  std::size_t count_ = 0, exact_ = 0, exact_ci_ = 0;
  std::size_t edits_ = 0, label_chars_ = 0, correct_chars_ = 0;
  std::map<char32_t, std::pair<std::size_t, std::size_t>> per_char_;  // correct, total
  std::map<std::pair<std::u32string, std::u32string>, std::size_t> confusions_;
};

}  // namespace captcha
