// Typed exceptions thrown by the captcha-ocr libraries. Every message names the file or the
// setting at fault and the reason, so that a caller can print what() as one line.
#pragma once

#include <stdexcept>
#include <string>

namespace captcha {

// Base of every error the libraries throw on bad input or a failed operation.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An image file that cannot be read or decoded.
class ImageError : public Error {
 public:
  using Error::Error;
};

// A dataset folder that is missing, empty or has no usable image.
class DatasetError : public Error {
 public:
  using Error::Error;
};

// A model file that is truncated, foreign, of another format version or inconsistent.
class ModelFileError : public Error {
 public:
  using Error::Error;
};

// A setting that cannot work (bad charset, input too narrow for the labels, ...).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// `error`'s message as a line naming `name`: the message itself where it begins with the name
// (the libraries' errors name their file), otherwise "name: message" (a decoder's, say).
inline std::string message_naming(const std::string& name, const std::exception& error) {
  const std::string message = error.what();
  return message.rfind(name, 0) == 0 ? message : name + ": " + message;
}

}  // namespace captcha
