// CTC decoding: best-path (greedy) and prefix beam search over probabilities.
#include "captcha/ctc_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "captcha/utf8.h"

namespace captcha {

void softmax_rows(std::vector<float>& logits, int time_steps, int num_classes,
                  const std::vector<bool>& allowed) {
  for (int t = 0; t < time_steps; ++t) {
    float* row = logits.data() + static_cast<std::size_t>(t) * num_classes;
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int c = 0; c < num_classes; ++c)
      if (allowed.empty() || allowed[c]) max_logit = std::max(max_logit, row[c]);
    float sum = 0;
    for (int c = 0; c < num_classes; ++c) {
      row[c] = (allowed.empty() || allowed[c]) ? std::exp(row[c] - max_logit) : 0.0f;
      sum += row[c];
    }
    for (int c = 0; c < num_classes; ++c) row[c] /= sum;
  }
}

std::vector<bool> allowed_mask(const Charset& charset, const std::string& allowed_symbols) {
  if (allowed_symbols.empty()) return {};
  std::vector<bool> mask(charset.num_classes(), false);
  mask[Charset::kBlank] = true;
  for (char32_t c : utf8_to_u32(allowed_symbols)) {
    const int index = charset.class_of(c);
    if (index > 0) mask[index] = true;
  }
  return mask;
}

std::vector<DecodedText> decode_logits(const float* logits, int batch, int time_steps, int num_classes,
                                       const Charset& charset, int beam_width,
                                       const std::vector<bool>& allowed, LengthRange lengths) {
  std::vector<DecodedText> out;
  out.reserve(batch);
  const std::size_t per_image = static_cast<std::size_t>(time_steps) * num_classes;
  for (int n = 0; n < batch; ++n) {
    std::vector<float> probabilities(logits + n * per_image, logits + (n + 1) * per_image);
    softmax_rows(probabilities, time_steps, num_classes, allowed);
    out.push_back(decode(probabilities.data(), time_steps, num_classes, charset, beam_width, lengths));
  }
  return out;
}

namespace {

DecodedText make_text(const std::vector<int>& classes, std::vector<float> probabilities,
                      const Charset& charset) {
  DecodedText out;
  out.text = charset.decode(classes);
  out.char_probabilities = std::move(probabilities);
  for (float p : out.char_probabilities) out.confidence *= p;
  return out;
}

}  // namespace

DecodedText greedy_decode(const float* probabilities, int time_steps, int num_classes,
                          const Charset& charset) {
  std::vector<int> classes;
  std::vector<float> char_probabilities;
  int previous = Charset::kBlank;
  for (int t = 0; t < time_steps; ++t) {
    const float* row = probabilities + static_cast<std::size_t>(t) * num_classes;
    const int best = static_cast<int>(std::max_element(row, row + num_classes) - row);
    if (best != Charset::kBlank) {
      if (best != previous) {
        classes.push_back(best);
        char_probabilities.push_back(row[best]);
      } else {
        char_probabilities.back() = std::max(char_probabilities.back(), row[best]);
      }
    }
    previous = best;
  }
  return make_text(classes, std::move(char_probabilities), charset);
}

namespace {

struct Beam {
  double blank = 0;      // probability of the prefix ending in a blank
  double non_blank = 0;  // probability of the prefix ending in its last symbol
  std::vector<float> char_probabilities;
  double total() const { return blank + non_blank; }
};

}  // namespace

DecodedText beam_decode(const float* probabilities, int time_steps, int num_classes,
                        const Charset& charset, int beam_width, LengthRange lengths) {
  beam_width = std::max(beam_width, 1);
  std::map<std::vector<int>, Beam> beams;
  beams[{}].blank = 1.0;
  for (int t = 0; t < time_steps; ++t) {
    const float* row = probabilities + static_cast<std::size_t>(t) * num_classes;
    std::map<std::vector<int>, Beam> next;
    for (const auto& [prefix, beam] : beams) {
      for (int c = 0; c < num_classes; ++c) {
        const double p = row[c];
        // The blank is followed however improbable, so that every prefix has a continuation:
        // under a length limit, a frame that only longer prefixes could take would otherwise
        // leave no beam at all.
        if (c == Charset::kBlank) {
          Beam& same = next[prefix];
          if (same.char_probabilities.empty()) same.char_probabilities = beam.char_probabilities;
          same.blank += beam.total() * p;
          continue;
        }
        if (p < 1e-6) continue;
        const bool repeat = !prefix.empty() && prefix.back() == c;
        if (repeat) {  // without a blank between, the repeat collapses into the same prefix
          Beam& same = next[prefix];
          if (same.char_probabilities.empty()) same.char_probabilities = beam.char_probabilities;
          if (!same.char_probabilities.empty())
            same.char_probabilities.back() = std::max(same.char_probabilities.back(), static_cast<float>(p));
          same.non_blank += beam.non_blank * p;
        }
        if (lengths.max > 0 && prefix.size() >= static_cast<std::size_t>(lengths.max)) continue;  // too long
        std::vector<int> extended = prefix;
        extended.push_back(c);
        Beam& grown = next[extended];
        if (grown.char_probabilities.size() != extended.size()) {
          grown.char_probabilities = beam.char_probabilities;
          grown.char_probabilities.push_back(static_cast<float>(p));
        }
        // A doubled symbol needs a blank between its two occurrences.
        grown.non_blank += (repeat ? beam.blank : beam.total()) * p;
      }
    }
    std::vector<std::pair<std::vector<int>, Beam>> ranked(next.begin(), next.end());
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.second.total() > b.second.total(); });
    if (ranked.size() > static_cast<std::size_t>(beam_width)) ranked.resize(beam_width);
    double mass = 0;
    for (const auto& entry : ranked) mass += entry.second.total();
    beams.clear();
    for (auto& [prefix, beam] : ranked) {
      if (mass > 0) beam.blank /= mass, beam.non_blank /= mass;  // keep the scale near 1
      beams.emplace(prefix, std::move(beam));
    }
  }
  // The most probable prefix, preferring those of an allowed length.
  const auto best = std::max_element(beams.begin(), beams.end(), [&](const auto& a, const auto& b) {
    const bool a_fits = lengths.contains(a.first.size()), b_fits = lengths.contains(b.first.size());
    if (a_fits != b_fits) return b_fits;
    return a.second.total() < b.second.total();
  });
  DecodedText out = make_text(best->first, best->second.char_probabilities, charset);
  out.confidence = static_cast<float>(best->second.total());
  return out;
}

DecodedText decode(const float* probabilities, int time_steps, int num_classes, const Charset& charset,
                   int beam_width, LengthRange lengths) {
  if (beam_width <= 1) {
    DecodedText best_path = greedy_decode(probabilities, time_steps, num_classes, charset);
    if (lengths.contains(utf8_to_u32(best_path.text).size())) return best_path;
    beam_width = kLengthBeamWidth;
  }
  return beam_decode(probabilities, time_steps, num_classes, charset, beam_width, lengths);
}

}  // namespace captcha
