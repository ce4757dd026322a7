// Writing a file whole or not at all: the bytes go to PATH.tmp, which is then renamed to PATH.
#pragma once

#include <string>

namespace captcha {

// Throws Error naming `path` when the file cannot be written or moved into place.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace captcha
