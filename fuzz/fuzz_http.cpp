// Fuzz target: what the service takes apart from a request before reading: base64 (data: URIs,
// both alphabets, padding, whitespace), the JSON body's read options, and the same options as
// query or form fields, and captcha_platform's signature of the body. Every input ends in a
// value or an HttpError with a 4xx status.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "serve/http_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto check = [](const serve::HttpError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  };
  try {
    const auto bytes = serve::decode_base64(input, "input");
    if (bytes.empty() || bytes.size() > input.size()) std::abort();
  } catch (const serve::HttpError& e) {
    check(e);
  }
  nlohmann::json body;
  try {
    body = serve::parse_json(input, "input");
  } catch (const serve::HttpError& e) {
    check(e);
  }
  if (body.is_object()) {
    try {
      const ReadOptions options = serve::read_options_from_json(body);
      if (options.views < 0 || options.views > kMaxReadingViews || options.beam_width < 0) std::abort();
    } catch (const serve::HttpError& e) {
      check(e);
    }
    if (serve::captcha_platform_signature(body, "secret").size() != 32) std::abort();  // MD5 in hex
  }
  std::string fields[4];
  for (std::size_t i = 0, start = 0; i < 4 && start <= input.size(); ++i) {
    const std::size_t end = std::min(input.find('&', start), input.size());
    fields[i] = input.substr(start, end - start);
    start = end + 1;
  }
  try {
    serve::read_options_from_fields(fields[0], fields[1], fields[2], fields[3]);
  } catch (const serve::HttpError& e) {
    check(e);
  }
  return 0;
}
