// CTC decoding: best-path (greedy) and prefix beam search over probabilities.
#include "captcha/ctc_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "captcha/utf8.h"

namespace captcha {

void softmax_rows(std::vector<float>& logits, int time_steps, int num_classes,
                  const std::vector<bool>& allowed) {
  constexpr float kInfinity = std::numeric_limits<float>::infinity();
  for (int t = 0; t < time_steps; ++t) {
    float* row = logits.data() + static_cast<std::size_t>(t) * num_classes;
    const auto open = [&](int c) { return allowed.empty() || allowed[c]; };
    // Non-finite logits (a network that overflowed) must not spread NaN through the reading: NaN
    // counts as the lowest value, infinite ones share the row, and a row holding nothing else
    // than minus infinity reads as the blank.
    float max_logit = -kInfinity;
    for (int c = 0; c < num_classes; ++c) {
      if (std::isnan(row[c]) || !open(c)) row[c] = -kInfinity;
      max_logit = std::max(max_logit, row[c]);
    }
    if (max_logit == -kInfinity) row[Charset::kBlank] = max_logit = 0;
    float sum = 0;
    for (int c = 0; c < num_classes; ++c) {
      row[c] = max_logit == kInfinity ? (row[c] == kInfinity ? 1.0f : 0.0f) : std::exp(row[c] - max_logit);
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
    out.back().case_probabilities =
        case_probabilities(probabilities.data(), time_steps, num_classes, charset, out.back().text);
  }
  return out;
}

std::vector<float> case_probabilities(const float* probabilities, int time_steps, int num_classes,
                                      const Charset& charset, const std::string& text) {
  const std::u32string symbols = utf8_to_u32(text);
  std::vector<int> classes = charset.encode(text);
  std::vector<float> out(classes.size(), 1.0f);
  double reading = -1;  // computed once a letter needs it
  for (std::size_t i = 0; i < classes.size(); ++i) {
    const char32_t other = swap_case(symbols[i]);
    const int other_class = other == symbols[i] ? -1 : charset.class_of(other);
    if (other_class <= 0) continue;
    if (reading < 0) reading = labelling_probability(probabilities, time_steps, num_classes, classes);
    const int own = classes[i];
    classes[i] = other_class;
    const double swapped = labelling_probability(probabilities, time_steps, num_classes, classes);
    classes[i] = own;
    if (reading + swapped > 0) out[i] = static_cast<float>(reading / (reading + swapped));
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

struct BestPath {
  std::vector<int> classes;
  std::vector<float> char_probabilities;
};

BestPath best_path(const float* probabilities, int time_steps, int num_classes) {
  BestPath out;
  int previous = Charset::kBlank;
  for (int t = 0; t < time_steps; ++t) {
    const float* row = probabilities + static_cast<std::size_t>(t) * num_classes;
    const int best = static_cast<int>(std::max_element(row, row + num_classes) - row);
    if (best != Charset::kBlank) {
      if (best != previous) {
        out.classes.push_back(best);
        out.char_probabilities.push_back(row[best]);
      } else {
        out.char_probabilities.back() = std::max(out.char_probabilities.back(), row[best]);
      }
    }
    previous = best;
  }
  return out;
}

}  // namespace

DecodedText greedy_decode(const float* probabilities, int time_steps, int num_classes,
                          const Charset& charset) {
  BestPath path = best_path(probabilities, time_steps, num_classes);
  return make_text(path.classes, std::move(path.char_probabilities), charset);
}

// alpha[s]: the probability of the alignments so far that end at position s of the labelling
// with blanks between and around its symbols (even s: a blank, odd s: classes[s / 2]).
double labelling_probability(const float* probabilities, int time_steps, int num_classes,
                             const std::vector<int>& classes) {
  const int positions = 2 * static_cast<int>(classes.size()) + 1;
  const auto symbol = [&](int s) { return s % 2 == 0 ? Charset::kBlank : classes[s / 2]; };
  std::vector<double> alpha(positions, 0.0), next(positions);
  if (time_steps <= 0) return classes.empty() ? 1.0 : 0.0;
  alpha[0] = probabilities[Charset::kBlank];
  if (positions > 1) alpha[1] = probabilities[symbol(1)];
  for (int t = 1; t < time_steps; ++t) {
    const float* row = probabilities + static_cast<std::size_t>(t) * num_classes;
    for (int s = 0; s < positions; ++s) {
      double sum = alpha[s] + (s >= 1 ? alpha[s - 1] : 0.0);
      // A symbol may follow the previous symbol directly unless it repeats it.
      if (s >= 2 && s % 2 == 1 && symbol(s) != symbol(s - 2)) sum += alpha[s - 2];
      next[s] = sum * row[symbol(s)];
    }
    alpha.swap(next);
  }
  return alpha[positions - 1] + (positions > 1 ? alpha[positions - 2] : 0.0);
}

namespace {

struct Beam {
  std::vector<int> prefix;
  double blank = 0;      // probability of the prefix ending in a blank
  double non_blank = 0;  // probability of the prefix ending in its last symbol
  std::vector<float> char_probabilities;
  double total() const { return blank + non_blank; }
};

// Symbols less probable than this at a time step do not extend or repeat a prefix there.
constexpr double kPruneProbability = 1e-6;

}  // namespace

// Each time step, every kept prefix has two kinds of continuation: itself (through a blank, or
// a repeat of its last symbol that collapses into it) and itself plus one symbol. An extension
// that spells another kept prefix adds to that prefix's own continuation; the others are
// candidates, scored without building them, and only the beam_width best are built.
DecodedText beam_decode(const float* probabilities, int time_steps, int num_classes,
                        const Charset& charset, int beam_width, LengthRange lengths) {
  beam_width = std::max(beam_width, 1);
  std::vector<Beam> beams(1), same;
  beams[0].blank = 1.0;
  struct Extension {
    int from, symbol;
    double probability;
  };
  struct Ranked {
    double probability;
    int same_index;  // >= 0: same[same_index]; -1: extensions[extension_index]
    int extension_index;
  };
  std::vector<Extension> extensions;
  std::vector<Ranked> ranked;
  std::vector<int> active;
  // child[i * num_classes + c]: the kept prefix that is beams[i]'s plus symbol c, or -1.
  std::vector<int> child;
  for (int t = 0; t < time_steps; ++t) {
    const float* row = probabilities + static_cast<std::size_t>(t) * num_classes;
    active.clear();
    for (int c = 0; c < num_classes; ++c)
      if (c != Charset::kBlank && row[c] >= kPruneProbability) active.push_back(c);
    const int kept = static_cast<int>(beams.size());
    child.assign(static_cast<std::size_t>(kept) * num_classes, -1);
    for (int j = 0; j < kept; ++j) {
      const std::vector<int>& longer = beams[j].prefix;
      if (longer.empty()) continue;
      for (int i = 0; i < kept; ++i)
        if (beams[i].prefix.size() + 1 == longer.size() &&
            std::equal(beams[i].prefix.begin(), beams[i].prefix.end(), longer.begin()))
          child[static_cast<std::size_t>(i) * num_classes + longer.back()] = j;
    }
    // The blank is followed however improbable, so that every prefix has a continuation: under
    // a length limit, a frame that only longer prefixes could take would otherwise leave no
    // beam at all.
    same.resize(kept);
    for (int i = 0; i < kept; ++i) {
      const Beam& beam = beams[i];
      Beam& next = same[i];
      next.prefix = beam.prefix;
      next.char_probabilities = beam.char_probabilities;
      next.blank = beam.total() * row[Charset::kBlank];
      next.non_blank = 0;
      if (!beam.prefix.empty()) {  // a repeat without a blank between collapses into the prefix
        const double p = row[beam.prefix.back()];
        if (p >= kPruneProbability) {
          next.non_blank = beam.non_blank * p;
          next.char_probabilities.back() = std::max(next.char_probabilities.back(), static_cast<float>(p));
        }
      }
    }
    extensions.clear();
    for (int i = 0; i < kept; ++i) {
      const Beam& beam = beams[i];
      if (lengths.max > 0 && beam.prefix.size() >= static_cast<std::size_t>(lengths.max)) continue;  // too long
      for (int c : active) {
        // A doubled symbol needs a blank between its two occurrences.
        const bool repeat = !beam.prefix.empty() && beam.prefix.back() == c;
        const double p = (repeat ? beam.blank : beam.total()) * row[c];
        const int existing = child[static_cast<std::size_t>(i) * num_classes + c];
        if (existing >= 0) {
          Beam& next = same[existing];
          next.non_blank += p;
          next.char_probabilities.back() = std::max(next.char_probabilities.back(), row[c]);
        } else {
          extensions.push_back({i, c, p});
        }
      }
    }
    ranked.clear();
    for (int i = 0; i < kept; ++i) ranked.push_back({same[i].total(), i, -1});
    for (int e = 0; e < static_cast<int>(extensions.size()); ++e)
      ranked.push_back({extensions[e].probability, -1, e});
    const std::size_t width = std::min(ranked.size(), static_cast<std::size_t>(beam_width));
    std::partial_sort(ranked.begin(), ranked.begin() + width, ranked.end(),
                      [](const Ranked& a, const Ranked& b) { return a.probability > b.probability; });
    double mass = 0;
    for (std::size_t k = 0; k < width; ++k) mass += ranked[k].probability;
    const double scale = mass > 0 ? 1 / mass : 1;  // keep the scale near 1
    std::vector<Beam> next(width);
    for (std::size_t k = 0; k < width; ++k) {
      if (ranked[k].same_index >= 0) {
        next[k] = std::move(same[ranked[k].same_index]);
      } else {
        const Extension& e = extensions[ranked[k].extension_index];
        const Beam& from = beams[e.from];
        next[k].prefix = from.prefix;
        next[k].prefix.push_back(e.symbol);
        next[k].char_probabilities = from.char_probabilities;
        next[k].char_probabilities.push_back(row[e.symbol]);
        next[k].non_blank = e.probability;
      }
      next[k].blank *= scale, next[k].non_blank *= scale;
    }
    beams = std::move(next);
  }
  // The most probable prefix, preferring those of an allowed length.
  const auto best = std::max_element(beams.begin(), beams.end(), [&](const Beam& a, const Beam& b) {
    const bool a_fits = lengths.contains(a.prefix.size()), b_fits = lengths.contains(b.prefix.size());
    if (a_fits != b_fits) return b_fits;
    return a.total() < b.total();
  });
  DecodedText out = make_text(best->prefix, best->char_probabilities, charset);
  out.confidence = static_cast<float>(best->total());
  return out;
}

DecodedText decode(const float* probabilities, int time_steps, int num_classes, const Charset& charset,
                   int beam_width, LengthRange lengths) {
  BestPath path = best_path(probabilities, time_steps, num_classes);
  if (lengths.contains(path.classes.size())) {
    if (beam_width <= 1) return make_text(path.classes, std::move(path.char_probabilities), charset);
    // The probabilities of all labellings sum to one, so one holding more than half is the most
    // probable; a confident reading needs no search.
    const double probability = labelling_probability(probabilities, time_steps, num_classes, path.classes);
    if (probability > 0.5) {
      DecodedText out = make_text(path.classes, std::move(path.char_probabilities), charset);
      out.confidence = static_cast<float>(probability);
      return out;
    }
  } else {
    beam_width = std::max(beam_width, kLengthBeamWidth);
  }
  return beam_decode(probabilities, time_steps, num_classes, charset, beam_width, lengths);
}

}  // namespace captcha
