// What the service takes apart before reading: base64 (standard or URL-safe alphabet, padding
// optional, whitespace and a "data:...;base64," prefix allowed), the read options of a request,
// captcha_platform's request signatures, and an SHA-256 of a model file for /v1/models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "captcha/errors.h"
#include "captcha/recogniser.h"

namespace captcha::serve {

// An error the client caused or must see, with its HTTP status.
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// `text` parsed as JSON nested at most kMaxJsonDepth deep (a body of 40 MB of '[' would
// otherwise build gigabytes of nested arrays). Throws HttpError 400 naming `what`.
inline constexpr int kMaxJsonDepth = 32;
nlohmann::json parse_json(const std::string& text, const std::string& what);

// Throws HttpError 400 naming `what` where `text` is not base64.
std::vector<std::uint8_t> decode_base64(const std::string& text, const std::string& what);

// The read options a request may set: "allowed" (symbols), "views" (1 to kMaxReadingViews),
// "beam" (0 to kMaxBeamWidth), "any_length". Throws HttpError 400 for a value out of range.
inline constexpr int kMaxBeamWidth = 64;
ReadOptions read_options_from_json(const nlohmann::json& request);
// The same from query or form parameters (text values).
ReadOptions read_options_from_fields(const std::string& allowed, const std::string& views, const std::string& beam,
                                     const std::string& any_length);

// captcha_platform's request signature: upper-case hex MD5 of "k1=v1&k2=v2&...&SECRET" over the
// body's fields other than "sign" in name order, each value as Python's str() writes it.
std::string captcha_platform_signature(const nlohmann::json& body, const std::string& secret);

// Lower-case hex SHA-256 of the file at `path`. Throws Error naming it.
std::string sha256_of_file(const std::string& path);

}  // namespace captcha::serve
