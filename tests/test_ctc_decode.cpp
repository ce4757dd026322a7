// CTC decoding on hand-built probabilities: repeats collapse, blanks drop, a doubled letter
// separated by a blank survives; beam search agrees where it must and wins where it should.
#include "captcha/ctc_decode.h"

#include <cmath>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace captcha {
namespace {

// Rows of one-hot-ish probabilities: each entry is the class that gets `peak`.
std::vector<float> peaks(const std::vector<int>& classes, int num_classes, float peak = 0.9f) {
  std::vector<float> p;
  for (int c : classes)
    for (int k = 0; k < num_classes; ++k)
      p.push_back(k == c ? peak : (1 - peak) / (num_classes - 1));
  return p;
}

const Charset kAbc("abc");  // a=1 b=2 c=3

TEST(GreedyDecode, CollapsesRepeatsAndDropsBlanks) {
  const auto p = peaks({0, 1, 1, 1, 0, 2, 2, 0, 0, 3}, 4);
  EXPECT_EQ(greedy_decode(p.data(), 10, 4, kAbc).text, "abc");
}

TEST(GreedyDecode, KeepsDoubledLetterSeparatedByBlank) {
  const auto p = peaks({1, 1, 0, 1, 2}, 4);
  EXPECT_EQ(greedy_decode(p.data(), 5, 4, kAbc).text, "aab");
  const auto merged = peaks({1, 1, 1, 2}, 4);
  EXPECT_EQ(greedy_decode(merged.data(), 4, 4, kAbc).text, "ab");
}

TEST(GreedyDecode, AllBlankIsEmptyWithConfidenceOne) {
  const auto p = peaks({0, 0, 0}, 4);
  const auto d = greedy_decode(p.data(), 3, 4, kAbc);
  EXPECT_EQ(d.text, "");
  EXPECT_FLOAT_EQ(d.confidence, 1.0f);
}

TEST(GreedyDecode, ConfidenceIsProductOfCharacterPeaks) {
  std::vector<float> p = peaks({1, 0, 2}, 4, 0.8f);
  p[2 * 4 + 2] = 0.5f, p[2 * 4 + 0] = 0.3f;  // 'b' at 0.5
  const auto d = greedy_decode(p.data(), 3, 4, kAbc);
  ASSERT_EQ(d.char_probabilities.size(), 2u);
  EXPECT_FLOAT_EQ(d.char_probabilities[0], 0.8f);
  EXPECT_FLOAT_EQ(d.char_probabilities[1], 0.5f);
  EXPECT_NEAR(d.confidence, 0.4f, 1e-6);
}

TEST(BeamDecode, AgreesWithGreedyOnConfidentInput) {
  const auto p = peaks({0, 1, 1, 0, 1, 2, 0, 3, 3}, 4, 0.97f);
  EXPECT_EQ(beam_decode(p.data(), 9, 4, kAbc, 8).text, "aabc");
}

TEST(BeamDecode, FindsTheMostProbableLabellingWhereGreedyFails) {
  // Two steps; blank is the single most likely class in each, but "a" collects more mass
  // over its alignments (a-, -a, aa) than the empty string (--).
  const std::vector<float> p = {0.4f, 0.35f, 0.25f, 0.0f,   // t0: blank .4, a .35, b .25
                                0.4f, 0.35f, 0.25f, 0.0f};  // t1
  EXPECT_EQ(greedy_decode(p.data(), 2, 4, kAbc).text, "");
  const auto d = beam_decode(p.data(), 2, 4, kAbc, 10);
  // P(a) = .4*.35 + .35*.4 + .35*.35 = 0.4025 > P("") = 0.16
  EXPECT_EQ(d.text, "a");
  EXPECT_GT(d.confidence, 0.3f);
}

// A stray symbol after the text: greedy reads four symbols; held to three, the best
// three-symbol labelling wins (the stray 'c' was at 0.45 against 0.40 blank).
TEST(Decode, HoldsReadingsToTheLengthRange) {
  std::vector<float> p = peaks({1, 0, 2, 0, 1, 0, 3}, 4);
  p[6 * 4 + 3] = 0.45f, p[6 * 4 + 0] = 0.40f, p[6 * 4 + 1] = 0.10f, p[6 * 4 + 2] = 0.05f;
  EXPECT_EQ(decode(p.data(), 7, 4, kAbc, 0).text, "abac");
  EXPECT_EQ(decode(p.data(), 7, 4, kAbc, 0, {3, 3}).text, "aba");
  EXPECT_EQ(decode(p.data(), 7, 4, kAbc, 0, {1, 4}).text, "abac");  // in range: the best path
  EXPECT_EQ(beam_decode(p.data(), 7, 4, kAbc, 8, {0, 3}).text, "aba");
  // Too short: the beam's longer labelling where one exists.
  std::vector<float> q = peaks({1, 0, 0, 2}, 4);
  q[1 * 4 + 3] = 0.45f, q[1 * 4 + 0] = 0.50f, q[1 * 4 + 1] = 0.03f, q[1 * 4 + 2] = 0.02f;
  EXPECT_EQ(decode(q.data(), 4, 4, kAbc, 0).text, "ab");
  EXPECT_EQ(decode(q.data(), 4, 4, kAbc, 0, {3, 5}).text, "acb");
  // No labelling fits: the most probable one.
  EXPECT_EQ(decode(q.data(), 4, 4, kAbc, 0, {9, 9}).text, "ab");
}

TEST(Decode, SurvivesAFrameThatOnlyALongerReadingCouldTake) {
  // Three certain symbols, no blank probability at all, readings held to two symbols: no
  // continuation of a full-length prefix fits the third frame. This crashed during a training
  // run's validation (the beam emptied).
  const float tiny = 1e-8f;  // under the search's pruning threshold (1e-6)
  const std::vector<float> p = {tiny, 1, 0, 0,   // a
                                tiny, 0, 1, 0,   // b
                                tiny, 0, 0, 1};  // c
  EXPECT_EQ(decode(p.data(), 3, 4, kAbc, 0).text, "abc");
  EXPECT_EQ(decode(p.data(), 3, 4, kAbc, 0, {2, 2}).text, "ab");
  EXPECT_EQ(beam_decode(p.data(), 3, 4, kAbc, 8, {0, 2}).text, "ab");
}

// With a beam wide enough to keep every prefix, the search is exact: on random probabilities
// it finds the labelling that the sum over all alignments (enumerated here) makes most probable,
// with that probability as its confidence; held to a length range, the most probable of those
// lengths. decode() agrees, taking the best path's labelling without a search where it holds
// more than half of the probability (the peaked trials), and labelling_probability() is the sum.
TEST(BeamDecode, WideBeamFindsTheMostProbableLabellingOfAllAlignments) {
  const int time_steps = 5, num_classes = 4;
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(0.01f, 1.0f);
  int confident = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const bool peaked = trial % 2 == 1;
    std::vector<float> p(time_steps * num_classes);
    for (int t = 0; t < time_steps; ++t) {
      float sum = 0;
      for (int c = 0; c < num_classes; ++c) sum += p[t * num_classes + c] = uniform(random);
      if (peaked) p[t * num_classes + random() % num_classes] += 20, sum += 20;
      for (int c = 0; c < num_classes; ++c) p[t * num_classes + c] /= sum;
    }
    std::map<std::vector<int>, double> labellings;  // every alignment, collapsed
    int paths = 1;
    for (int t = 0; t < time_steps; ++t) paths *= num_classes;
    for (int path = 0; path < paths; ++path) {
      std::vector<int> classes;
      double probability = 1;
      int previous = Charset::kBlank;
      for (int t = 0, rest = path; t < time_steps; ++t, rest /= num_classes) {
        const int c = rest % num_classes;
        probability *= p[t * num_classes + c];
        if (c != Charset::kBlank && c != previous) classes.push_back(c);
        previous = c;
      }
      labellings[classes] += probability;
    }
    for (const auto& [classes, probability] : labellings)
      EXPECT_NEAR(labelling_probability(p.data(), time_steps, num_classes, classes), probability, 1e-6);
    const auto most_probable = [&](LengthRange lengths) {
      std::pair<std::string, double> best{"", -1};
      for (const auto& [classes, probability] : labellings)
        if (lengths.contains(classes.size()) && probability > best.second) best = {kAbc.decode(classes), probability};
      return best;
    };
    const auto [text, probability] = most_probable({});
    confident += probability > 0.5 && greedy_decode(p.data(), time_steps, num_classes, kAbc).text == text;
    const std::string where = "trial " + std::to_string(trial);
    const DecodedText searched = beam_decode(p.data(), time_steps, num_classes, kAbc, 1000);
    EXPECT_EQ(searched.text, text) << where;
    EXPECT_NEAR(searched.confidence, probability, 1e-5) << where;
    const DecodedText read = decode(p.data(), time_steps, num_classes, kAbc, 1000);
    EXPECT_EQ(read.text, text) << where;
    EXPECT_NEAR(read.confidence, probability, 1e-5) << where;
    EXPECT_EQ(beam_decode(p.data(), time_steps, num_classes, kAbc, 1000, {2, 3}).text, most_probable({2, 3}).first)
        << where;
  }
  EXPECT_GE(confident, 5);  // decode() took the best path's labelling without a search
}

// A letter's case probability weighs the reading against the same reading with that letter in
// the other case; symbols without another case in the charset are sure of it.
TEST(CaseProbabilities, WeighTheReadingAgainstTheOtherCase) {
  const Charset charset("cCx1");  // c=1 C=2 x=3 1=4
  std::vector<float> p = peaks({1, 0, 4}, 5, 1.0f);
  p[0 * 5 + 1] = 0.6f, p[0 * 5 + 2] = 0.4f;
  const auto c = case_probabilities(p.data(), 3, 5, charset, "c1");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_NEAR(c[0], 0.6f, 1e-6);
  EXPECT_FLOAT_EQ(c[1], 1.0f);
  EXPECT_EQ(case_probabilities(p.data(), 3, 5, charset, "x1"), (std::vector<float>{1.0f, 1.0f}));

  // Each letter against its own swap, doubled letters included ("cC" swapped is "CC").
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(0.05f, 1.0f);
  std::vector<float> q(6 * 5);
  for (auto& v : q) v = uniform(random);
  softmax_rows(q, 6, 5);
  for (const std::string text : {"cC", "Cc1", "xc"}) {
    const auto got = case_probabilities(q.data(), 6, 5, charset, text);
    auto classes = charset.encode(text);
    const double own = labelling_probability(q.data(), 6, 5, classes);
    for (std::size_t i = 0; i < classes.size(); ++i) {
      if (text[i] != 'c' && text[i] != 'C') {
        EXPECT_FLOAT_EQ(got[i], 1.0f) << text << " " << i;
        continue;
      }
      auto swapped = classes;
      swapped[i] = swapped[i] == 1 ? 2 : 1;
      const double other = labelling_probability(q.data(), 6, 5, swapped);
      EXPECT_NEAR(got[i], own / (own + other), 1e-5) << text << " " << i;
    }
  }
}

TEST(CaseProbabilities, ComeWithEachDecodedReadingAndHonourTheMask) {
  const Charset charset("cC1");
  std::vector<float> logits = {0, 2, 1.5f, 0,   // c over C
                               5, 0, 0, 0,      // blank
                               0, 0, 0, 5};     // 1
  const auto open = decode_logits(logits.data(), 1, 3, 4, charset, 1);
  ASSERT_EQ(open[0].text, "c1");
  ASSERT_EQ(open[0].case_probabilities.size(), 2u);
  EXPECT_GT(open[0].case_probabilities[0], 0.5f);
  EXPECT_LT(open[0].case_probabilities[0], 0.7f);
  const auto masked = decode_logits(logits.data(), 1, 3, 4, charset, 1, allowed_mask(charset, "c1"));
  EXPECT_EQ(masked[0].case_probabilities, (std::vector<float>{1.0f, 1.0f}));
}

TEST(Softmax, MaskRemovesDisallowedClasses) {
  std::vector<float> logits = {0.0f, 5.0f, 1.0f, 0.0f};  // 'a' would win
  softmax_rows(logits, 1, 4, allowed_mask(kAbc, "bc"));
  EXPECT_FLOAT_EQ(logits[1], 0.0f);
  EXPECT_NEAR(logits[0] + logits[2] + logits[3], 1.0f, 1e-6);
  EXPECT_EQ(greedy_decode(logits.data(), 1, 4, kAbc).text, "b");
}

// An overflowing network's logits still give probabilities: NaN is the lowest value, infinities
// share their row, a row of minus infinity (or of nothing allowed) reads as the blank.
TEST(Softmax, NonFiniteLogitsGiveProbabilities) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<float> logits = {nan, 2.0f, nan, 1.0f,   // 'a' wins over 'c'
                               0.0f, inf, -inf, inf,   // 'a' and 'c' share
                               -inf, -inf, nan, -inf,  // nothing: blank
                               nan, nan, nan, nan};
  softmax_rows(logits, 4, 4);
  for (int t = 0; t < 4; ++t) {
    float sum = 0;
    for (int c = 0; c < 4; ++c) {
      EXPECT_TRUE(logits[t * 4 + c] >= 0 && logits[t * 4 + c] <= 1) << t << "," << c;
      sum += logits[t * 4 + c];
    }
    EXPECT_NEAR(sum, 1.0f, 1e-6) << t;
  }
  EXPECT_FLOAT_EQ(logits[1], 1 / (1 + std::exp(-1.0f)));
  EXPECT_FLOAT_EQ(logits[5], 0.5f);
  EXPECT_FLOAT_EQ(logits[7], 0.5f);
  EXPECT_FLOAT_EQ(logits[8], 1.0f);
  EXPECT_FLOAT_EQ(logits[12], 1.0f);
  EXPECT_EQ(greedy_decode(logits.data(), 4, 4, kAbc).text.substr(0, 1), "a");
}

}  // namespace
}  // namespace captcha
