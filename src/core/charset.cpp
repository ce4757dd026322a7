// Charset: symbols <-> class indices (blank = 0), presets, derivation from labels.
#include "captcha/charset.h"

#include <algorithm>
#include <set>

#include "captcha/errors.h"
#include "captcha/utf8.h"

namespace captcha {

Charset::Charset(const std::string& symbols) : symbols_(utf8_to_u32(symbols)) {
  if (symbols_.empty()) throw ConfigError("charset is empty");
  std::set<char32_t> seen;
  for (char32_t c : symbols_) {
    if (c < 0x20 || c == 0x7F)
      throw ConfigError("charset holds a control character (code " + std::to_string(c) + ")");
    if (!seen.insert(c).second)
      throw ConfigError("charset repeats the symbol '" + u32_to_utf8(c) + "'");
  }
}

Charset Charset::from_labels(const std::vector<std::string>& labels) {
  std::set<char32_t> symbols;
  for (const auto& label : labels)
    for (char32_t c : utf8_to_u32(label)) symbols.insert(c);
  if (symbols.empty()) throw ConfigError("no symbols in the labels to build a charset from");
  return Charset(u32_to_utf8(std::u32string(symbols.begin(), symbols.end())));
}

Charset Charset::from_spec(const std::string& spec) {
  const std::string digits = "0123456789", lower = "abcdefghijklmnopqrstuvwxyz";
  std::string upper = lower;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  if (spec == "digits") return Charset(digits);
  if (spec == "lower") return Charset(lower);
  if (spec == "upper") return Charset(upper);
  if (spec == "alnum") return Charset(digits + lower + upper);
  if (spec == "alnum-lower") return Charset(digits + lower);
  return Charset(spec);
}

std::string Charset::symbols_utf8() const { return u32_to_utf8(symbols_); }

int Charset::class_of(char32_t symbol) const {
  const auto pos = symbols_.find(symbol);
  return pos == std::u32string::npos ? -1 : static_cast<int>(pos) + 1;
}

char32_t Charset::symbol_of(int class_index) const {
  return symbols_.at(static_cast<std::size_t>(class_index - 1));
}

bool Charset::can_encode(const std::u32string& text) const {
  return std::all_of(text.begin(), text.end(), [&](char32_t c) { return class_of(c) > 0; });
}

std::vector<int> Charset::encode(const std::string& text) const {
  std::vector<int> out;
  for (char32_t c : utf8_to_u32(text)) {
    const int index = class_of(c);
    if (index < 0)
      throw ConfigError("symbol '" + u32_to_utf8(c) + "' of \"" + text + "\" is not in the charset");
    out.push_back(index);
  }
  return out;
}

std::string Charset::decode(const std::vector<int>& class_indices) const {
  std::u32string out;
  for (int index : class_indices)
    if (index != kBlank) out.push_back(symbol_of(index));
  return u32_to_utf8(out);
}

}  // namespace captcha
