#include "captcha/atomic_file.h"

#include <filesystem>
#include <fstream>

#include "captcha/errors.h"

namespace captcha {

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw Error(path + ": cannot write the file");
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) throw Error(path + ": cannot write the file (" + ec.message() + ")");
}

}  // namespace captcha
