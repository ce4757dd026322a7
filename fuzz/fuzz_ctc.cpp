// Fuzz target: CTC decoding of arbitrary network outputs.
//
// The first bytes choose the sizes (time steps 1-64, classes 2-40, batch 1-3), the beam width,
// the label lengths and the allowed symbols; the rest are the logits as raw floats, NaN, infinity
// and denormals included. softmax_rows, greedy and beam decoding, decode() and decode_logits must
// each give text of the charset's symbols with probabilities in [0, 1], whatever the numbers.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "captcha/ctc_decode.h"
#include "captcha/utf8.h"

namespace {

void check(const captcha::DecodedText& decoded, const captcha::Charset& charset) {
  const std::u32string text = captcha::utf8_to_u32(decoded.text);
  if (text.size() != decoded.char_probabilities.size()) std::abort();
  for (char32_t c : text)
    if (charset.symbols().find(c) == std::u32string::npos) std::abort();
  for (float p : decoded.char_probabilities)
    if (!(p >= 0 && p <= 1.0001f)) std::abort();
  if (!(decoded.confidence >= 0 && decoded.confidence <= 1.0001f)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  if (size < 8) return 0;
  const int steps = 1 + data[0] % 64;
  const int classes = 2 + data[1] % 39;
  const int batch = 1 + data[2] % 3;
  const int beam = data[3] % 24;
  const LengthRange lengths{data[4] % 8, data[5] % 12};
  const std::uint16_t allowed_bits = static_cast<std::uint16_t>(data[6] | data[7] << 8);
  data += 8, size -= 8;

  const std::u32string symbols = U"abcdefghijklmnopqrstuvwxyz0123456789\u03b1\u03b2\u03b3";
  const Charset charset(u32_to_utf8(symbols.substr(0, classes - 1)));
  std::u32string allowed;
  for (int i = 0; i < 16 && i < charset.size(); ++i)
    if (allowed_bits >> i & 1) allowed += charset.symbols()[i];

  std::vector<float> logits(static_cast<std::size_t>(batch) * steps * classes, 0.0f);
  std::memcpy(logits.data(), data, std::min(size, logits.size() * sizeof(float)));

  for (const DecodedText& d : decode_logits(logits.data(), batch, steps, classes, charset, beam,
                                            allowed_mask(charset, u32_to_utf8(allowed)), lengths))
    check(d, charset);

  std::vector<float> probabilities(logits.begin(), logits.begin() + steps * classes);
  softmax_rows(probabilities, steps, classes);
  for (float p : probabilities)
    if (!(p >= 0 && p <= 1.0001f)) std::abort();
  check(greedy_decode(probabilities.data(), steps, classes, charset), charset);
  check(beam_decode(probabilities.data(), steps, classes, charset, std::max(beam, 1), lengths), charset);
  check(decode(probabilities.data(), steps, classes, charset, beam, lengths), charset);
  std::vector<int> label;
  for (std::size_t i = 0; i < 6 && i < size; ++i) label.push_back(1 + data[i] % (classes - 1));
  const double p = labelling_probability(probabilities.data(), steps, classes, label);
  if (!(p >= 0 && p <= 1.0001)) std::abort();
  return 0;
}
