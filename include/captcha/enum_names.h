// Settings that take one of a few values are enums with a table of their names: the names are
// what the model file, the stored training options, the command line and the logs spell.
//
//   enum class Colour { kRed, kBlue };
//   inline constexpr EnumName<Colour> kColourNames[] = {{Colour::kRed, "red"}, {Colour::kBlue, "blue"}};
//   Colour c = parse_enum(text, kColourNames, "colour");  // ConfigError: unknown colour 'x' (expected red or blue)
//   std::string name = enum_name(c, kColourNames);
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "captcha/errors.h"

namespace captcha {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The names in table order.
template <typename E, std::size_t N>
std::vector<std::string> enum_names(const EnumName<E> (&names)[N]) {
  std::vector<std::string> out;
  for (const auto& entry : names) out.push_back(entry.name);
  return out;
}

// The value named `text`; throws ConfigError naming `what` and the allowed names otherwise.
template <typename E, std::size_t N>
E parse_enum(const std::string& text, const EnumName<E> (&names)[N], const std::string& what) {
  for (const auto& entry : names)
    if (text == entry.name) return entry.value;
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) expected += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + names[i].name;
  throw ConfigError("unknown " + what + " '" + text + "' (expected " + expected + ")");
}

template <typename E, std::size_t N>
std::string enum_name(E value, const EnumName<E> (&names)[N]) {
  for (const auto& entry : names)
    if (entry.value == value) return entry.name;
  return "?";
}

}  // namespace captcha
