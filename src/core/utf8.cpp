// UTF-8 decoding/encoding for labels and charsets.
#include "captcha/utf8.h"

#include "captcha/errors.h"

namespace captcha {

std::u32string utf8_to_u32(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    int extra = 0;
    char32_t code_point = 0;
    if (lead < 0x80) {
      code_point = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      extra = 1, code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2, code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3, code_point = lead & 0x07;
    } else {
      throw ConfigError("malformed UTF-8 in \"" + text + "\"");
    }
    if (i + extra >= text.size() && extra > 0)
      throw ConfigError("truncated UTF-8 in \"" + text + "\"");
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) throw ConfigError("malformed UTF-8 in \"" + text + "\"");
      code_point = (code_point << 6) | (next & 0x3F);
    }
    // Strict: the shortest form only, no UTF-16 surrogates, nothing past U+10FFFF.
    constexpr char32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
    if (code_point < kSmallest[extra]) throw ConfigError("overlong UTF-8 in \"" + text + "\"");
    if ((code_point >= 0xD800 && code_point <= 0xDFFF) || code_point > 0x10FFFF)
      throw ConfigError("UTF-8 of a code point that is not a character in \"" + text + "\"");
    out.push_back(code_point);
    i += 1 + extra;
  }
  return out;
}

bool is_valid_utf8(const std::string& text) {
  try {
    utf8_to_u32(text);
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

std::string u32_to_utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::string u32_to_utf8(const std::u32string& text) {
  std::string out;
  for (char32_t c : text) out += u32_to_utf8(c);
  return out;
}

char32_t fold_case(char32_t c) { return (c >= U'A' && c <= U'Z') ? c - U'A' + U'a' : c; }

char32_t swap_case(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c - U'A' + U'a';
  if (c >= U'a' && c <= U'z') return c - U'a' + U'A';
  return c;
}

std::u32string fold_case(std::u32string text) {
  for (auto& c : text) c = fold_case(c);
  return text;
}

}  // namespace captcha
