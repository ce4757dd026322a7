#include "http_input.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>

#include <nlohmann/json.hpp>

#include "captcha/preprocess.h"
#include "core/json_fields.h"

namespace captcha::serve {

namespace {

int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int parse_int(const std::string& text, const char* name) {
  std::size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw HttpError(400, std::string("'") + name + "' is not a whole number: " + text);
  return value;
}

ReadOptions checked(ReadOptions options) {
  if (options.views < 0 || options.views > kMaxReadingViews)
    throw HttpError(400, "'views' must be 1 to " + std::to_string(kMaxReadingViews));
  if (options.beam_width < 0 || options.beam_width > kMaxBeamWidth)
    throw HttpError(400, "'beam' must be 0 to " + std::to_string(kMaxBeamWidth));
  return options;
}

}  // namespace

std::vector<std::uint8_t> decode_base64(const std::string& text, const std::string& what) {
  std::size_t start = 0;
  if (text.rfind("data:", 0) == 0) {
    const std::size_t comma = text.find(',');
    if (comma == std::string::npos || text.rfind(";base64", comma) == std::string::npos)
      throw HttpError(400, what + ": a data: URI that is not base64");
    start = comma + 1;
  }
  std::vector<std::uint8_t> out;
  out.reserve((text.size() - start) / 4 * 3 + 3);
  std::uint32_t bits = 0;
  int count = 0, padding = 0;
  for (std::size_t i = start; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int value = base64_value(c);
    if (value < 0 || padding > 0) throw HttpError(400, what + " is not valid base64");
    bits = bits << 6 | static_cast<std::uint32_t>(value);
    if (++count == 4) {
      out.push_back(static_cast<std::uint8_t>(bits >> 16));
      out.push_back(static_cast<std::uint8_t>(bits >> 8));
      out.push_back(static_cast<std::uint8_t>(bits));
      bits = 0, count = 0;
    }
  }
  if (count == 1 || padding > 2) throw HttpError(400, what + " is not valid base64");
  if (count == 2) out.push_back(static_cast<std::uint8_t>(bits >> 4));
  if (count == 3) {
    out.push_back(static_cast<std::uint8_t>(bits >> 10));
    out.push_back(static_cast<std::uint8_t>(bits >> 2));
  }
  if (out.empty()) throw HttpError(400, what + " is empty");
  return out;
}

ReadOptions read_options_from_json(const nlohmann::json& request) {
  ReadOptions options;
  try {
    if (request.contains("allowed") && !request.at("allowed").is_null()) options.allowed = request.at("allowed").get<std::string>();
    if (request.contains("views") && !request.at("views").is_null())
      options.views = static_cast<int>(json_fields::whole_number(request.at("views"), "views", 0, kMaxReadingViews));
    if (request.contains("beam") && !request.at("beam").is_null())
      options.beam_width = static_cast<int>(json_fields::whole_number(request.at("beam"), "beam", 0, kMaxBeamWidth));
    if (request.contains("any_length")) options.any_length = request.at("any_length").get<bool>();
  } catch (const nlohmann::json::exception&) {
    throw HttpError(400, "'allowed' must be a string, 'views' and 'beam' whole numbers, 'any_length' true or false");
  } catch (const ConfigError& e) {
    throw HttpError(400, e.what());
  }
  return checked(options);
}

ReadOptions read_options_from_fields(const std::string& allowed, const std::string& views, const std::string& beam,
                                     const std::string& any_length) {
  ReadOptions options;
  options.allowed = allowed;
  if (!views.empty()) options.views = parse_int(views, "views");
  if (!beam.empty()) options.beam_width = parse_int(beam, "beam");
  options.any_length = any_length == "1" || any_length == "true";
  return checked(options);
}

namespace {

using Digest = std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)>;

Digest start_digest(const EVP_MD* kind) {
  Digest context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), kind, nullptr);
  return context;
}

std::string finish_digest(const Digest& context, const char* hex) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(context.get(), digest, &size);
  std::string out;
  for (unsigned int i = 0; i < size; ++i) out += {hex[digest[i] >> 4], hex[digest[i] & 15]};
  return out;
}

// A string as Python's repr() writes it (single quotes unless it holds one and no double).
std::string python_repr(const std::string& text) {
  const char quote = text.find('\'') != std::string::npos && text.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : text) {
    if (c == '\\' || c == quote) out += '\\';
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + quote;
}

// A JSON value as Python's str() writes what json.loads makes of it.
std::string python_str(const nlohmann::json& value, bool nested = false) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return nested ? python_repr(value.get<std::string>()) : value.get<std::string>();
    case nlohmann::json::value_t::boolean:
      return value.get<bool>() ? "True" : "False";
    case nlohmann::json::value_t::null:
      return "None";
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      for (const auto& item : value) out += (out.size() > 1 ? ", " : "") + python_str(item, true);
      return out + "]";
    }
    case nlohmann::json::value_t::object: {
      std::string out = "{";
      for (const auto& [key, item] : value.items())
        out += (out.size() > 1 ? ", " : "") + python_repr(key) + ": " + python_str(item, true);
      return out + "}";
    }
    default:
      return value.dump();
  }
}

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& what) {
  // Called as each value starts and ends; `depth` counts the containers it is in.
  const auto limit_depth = [&what](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxJsonDepth)
      throw HttpError(400, what + " nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
  try {
    return nlohmann::json::parse(text, limit_depth);
  } catch (const nlohmann::json::exception&) {
    throw HttpError(400, what + " is not valid JSON");
  }
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read");
  const Digest context = start_digest(EVP_sha256());
  std::array<char, 1 << 16> buffer;
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0)
    EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  return finish_digest(context, "0123456789abcdef");
}

std::string captcha_platform_signature(const nlohmann::json& body, const std::string& secret) {
  std::string text;
  for (const auto& [key, value] : body.items())  // nlohmann's objects iterate in key order
    if (key != "sign") text += (text.empty() ? "" : "&") + key + "=" + python_str(value);
  text += "&" + secret;
  const Digest context = start_digest(EVP_md5());
  EVP_DigestUpdate(context.get(), text.data(), text.size());
  return finish_digest(context, "0123456789ABCDEF");
}

}  // namespace captcha::serve
