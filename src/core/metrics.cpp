// Exact match, CER, per-character accuracy and confusions from an edit-distance alignment.
#include "captcha/metrics.h"

#include <algorithm>
#include <iterator>

#include "captcha/utf8.h"

namespace captcha {

namespace {

// Full Levenshtein table, (|a|+1) x (|b|+1).
std::vector<std::size_t> distance_table(const std::u32string& a, const std::u32string& b) {
  const std::size_t cols = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * cols);
  for (std::size_t i = 0; i <= a.size(); ++i) d[i * cols] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j)
      d[i * cols + j] = std::min({d[(i - 1) * cols + j] + 1, d[i * cols + j - 1] + 1,
                                  d[(i - 1) * cols + j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
  return d;
}

}  // namespace

std::size_t edit_distance(const std::u32string& a, const std::u32string& b) {
  return distance_table(a, b).back();
}

void MetricsAccumulator::add(const std::string& truth_utf8, const std::string& reading_utf8,
                             const std::vector<float>& case_probabilities) {
  std::u32string truth = utf8_to_u32(truth_utf8), reading = utf8_to_u32(reading_utf8);
  const bool same_folded = fold_case(truth) == fold_case(reading);
  if (!case_insensitive_ && case_probabilities.size() == reading.size()) add_case(truth, reading, case_probabilities);
  if (case_insensitive_) truth = fold_case(truth), reading = fold_case(reading);
  ++count_;
  exact_ += truth == reading;
  exact_ci_ += same_folded;
  label_chars_ += truth.size();

  // Walk the alignment back from the end, counting matches and collecting confusions.
  const auto d = distance_table(truth, reading);
  const std::size_t cols = reading.size() + 1;
  edits_ += d.back();
  std::size_t i = truth.size(), j = reading.size();
  while (i > 0 || j > 0) {
    const std::size_t here = d[i * cols + j];
    if (i > 0 && j > 0 && here == d[(i - 1) * cols + j - 1] + (truth[i - 1] == reading[j - 1] ? 0 : 1)) {
      auto& tally = per_char_[truth[i - 1]];
      ++tally.second;
      if (truth[i - 1] == reading[j - 1]) {
        ++tally.first, ++correct_chars_;
      } else {
        ++confusions_[{std::u32string(1, truth[i - 1]), std::u32string(1, reading[j - 1])}];
      }
      --i, --j;
    } else if (i > 0 && here == d[(i - 1) * cols + j] + 1) {
      ++per_char_[truth[i - 1]].second;
      ++confusions_[{std::u32string(1, truth[i - 1]), U""}];
      --i;
    } else {
      ++confusions_[{U"", std::u32string(1, reading[j - 1])}];
      --j;
    }
  }
}

void MetricsAccumulator::add_case(const std::u32string& truth, const std::u32string& reading,
                                  const std::vector<float>& case_probabilities) {
  constexpr std::size_t kBins = std::size(kCaseBinEdges) - 1;
  if (case_bins_.empty())
    for (std::size_t b = 0; b < kBins; ++b) case_bins_.push_back({kCaseBinEdges[b], kCaseBinEdges[b + 1]});
  const auto d = distance_table(fold_case(truth), fold_case(reading));
  const std::size_t cols = reading.size() + 1;
  std::size_t i = truth.size(), j = reading.size();
  while (i > 0 && j > 0) {
    const std::size_t here = d[i * cols + j];
    const bool same_letter = fold_case(truth[i - 1]) == fold_case(reading[j - 1]);
    if (here == d[(i - 1) * cols + j - 1] + (same_letter ? 0 : 1)) {
      if (same_letter && swap_case(truth[i - 1]) != truth[i - 1]) {
        const float p = case_probabilities[j - 1];
        std::size_t b = 0;
        while (b + 1 < kBins && p >= case_bins_[b].to) ++b;
        CaseBin& bin = case_bins_[b];
        bin.mean_probability += p;  // a sum until report()
        ++bin.letters;
        bin.right_case += truth[i - 1] == reading[j - 1];
      }
      --i, --j;
    } else if (here == d[(i - 1) * cols + j] + 1) {
      --i;
    } else {
      --j;
    }
  }
}

EvaluationReport MetricsAccumulator::report(std::size_t max_confusions) const {
  EvaluationReport r;
  r.count = count_;
  if (count_ > 0) {
    r.exact_match = static_cast<double>(exact_) / count_;
    r.exact_match_case_insensitive = static_cast<double>(exact_ci_) / count_;
    r.case_only_errors = exact_ci_ - exact_;
  }
  if (label_chars_ > 0) {
    r.cer = static_cast<double>(edits_) / label_chars_;
    r.char_accuracy = static_cast<double>(correct_chars_) / label_chars_;
  }
  for (const auto& [symbol, tally] : per_char_)
    r.per_char_accuracy[u32_to_utf8(symbol)] = static_cast<double>(tally.first) / tally.second;
  for (const auto& [pair, count] : confusions_)
    r.confusions.push_back({u32_to_utf8(pair.first), u32_to_utf8(pair.second), count});
  std::stable_sort(r.confusions.begin(), r.confusions.end(),
                   [](const Confusion& a, const Confusion& b) { return a.count > b.count; });
  if (r.confusions.size() > max_confusions) r.confusions.resize(max_confusions);
  for (CaseBin bin : case_bins_) {
    if (bin.letters == 0) continue;
    bin.mean_probability /= static_cast<double>(bin.letters);
    r.case_calibration.push_back(bin);
  }
  return r;
}

}  // namespace captcha
