// UTF-8 <-> code points. Labels and charsets are UTF-8; metrics work on code points.
#pragma once

#include <string>

namespace captcha {

// Decodes UTF-8 to code points. Throws ConfigError on malformed UTF-8: a bad or truncated
// sequence, an overlong form, a UTF-16 surrogate or a code point past U+10FFFF.
std::u32string utf8_to_u32(const std::string& text);

// True when `text` is well-formed UTF-8 (file names on Linux need not be).
bool is_valid_utf8(const std::string& text);

// Encodes code points as UTF-8.
std::string u32_to_utf8(const std::u32string& text);
std::string u32_to_utf8(char32_t code_point);

// ASCII-only lower case of one code point (others unchanged).
char32_t fold_case(char32_t code_point);
std::u32string fold_case(std::u32string text);
// The other ASCII case of a letter; the code point itself for anything else.
char32_t swap_case(char32_t code_point);

}  // namespace captcha
