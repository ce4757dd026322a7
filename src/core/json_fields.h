// Numbers from JSON a file or a request gave, checked before they are converted: nlohmann's
// get<int>() of 3e37, or get<float>() of 1e300, is undefined behaviour. Each throws ConfigError
// naming the key where the value is not a number of that kind or out of the type's range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "captcha/errors.h"

namespace captcha::json_fields {

inline std::int64_t whole_number(const nlohmann::json& value, const std::string& key, std::int64_t low, std::int64_t high) {
  bool fits = false;
  std::int64_t number = 0;
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    fits = u <= static_cast<std::uint64_t>(high);
    number = fits ? static_cast<std::int64_t>(u) : 0;
  } else if (value.is_number_integer()) {
    number = value.get<std::int64_t>();
    fits = number >= low && number <= high;
  }
  if (!fits)
    throw ConfigError("'" + key + "' must be a whole number from " + std::to_string(low) + " to " + std::to_string(high));
  return number;
}

// in[key] as an int, `fallback` where absent.
inline int int_field(const nlohmann::json& in, const char* key, int fallback) {
  if (!in.contains(key)) return fallback;
  return static_cast<int>(whole_number(in.at(key), key, INT32_MIN, INT32_MAX));
}

inline std::vector<int> int_list(const nlohmann::json& value, const std::string& key) {
  if (!value.is_array()) throw ConfigError("'" + key + "' must be a list of whole numbers");
  std::vector<int> out;
  for (const auto& item : value) out.push_back(static_cast<int>(whole_number(item, key, INT32_MIN, INT32_MAX)));
  return out;
}

inline std::vector<int> int_list_field(const nlohmann::json& in, const char* key, std::vector<int> fallback) {
  return in.contains(key) ? int_list(in.at(key), key) : fallback;
}

// in[key] as a float, `fallback` where absent; any finite number within float's range.
inline float float_field(const nlohmann::json& in, const char* key, float fallback) {
  if (!in.contains(key)) return fallback;
  const nlohmann::json& value = in.at(key);
  const double number = value.is_number() ? value.get<double>() : HUGE_VAL;
  if (!(number >= -3.0e38 && number <= 3.0e38)) throw ConfigError(std::string("'") + key + "' must be a finite number");
  return static_cast<float>(number);
}

}  // namespace captcha::json_fields
