// Fuzz target: a dataset folder from outside: file names, labels.tsv, and the labels both give.
//
// The input's first line is a list of file names separated by '/' (which no name can hold); the
// rest is the folder's labels.tsv. The files are made (a small valid image where the name has
// an even length, an empty file otherwise), then the folder is scanned, its labels checked
// (strict UTF-8, labels.tsv giving one file two labels), a charset drawn from them and the images
// loaded. Every input ends in samples or a DatasetError/ConfigError, and every skipped sample is
// counted.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/image_io.h"

namespace fs = std::filesystem;

namespace {

const fs::path& scratch_folder() {
  static const fs::path folder = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path f = fs::path(tmp && *tmp ? tmp : "/tmp") / ("captcha-fuzz-labels-" + std::to_string(::getpid()));
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_folder(), ec);
    });
    return f;
  }();
  return folder;
}

const std::vector<std::uint8_t>& small_image() {
  static const std::vector<std::uint8_t> png = captcha::encode_image(captcha::Image(30, 12, 1, 200), "png");
  return png;
}

void write(const fs::path& path, const char* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data, static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const fs::path& folder = scratch_folder();
  std::error_code ec;
  fs::remove_all(folder, ec);
  fs::create_directories(folder);

  const std::size_t newline = std::min(input.find('\n'), input.size());
  const std::string names = input.substr(0, newline);
  int files = 0;
  for (std::size_t start = 0; start <= names.size() && files < 16;) {
    const std::size_t end = std::min(names.find_first_of(std::string("/\0", 2), start), names.size());
    const std::string name = names.substr(start, end - start);
    start = end + 1;
    if (name.empty() || name == "." || name == ".." || name.size() > 200) continue;
    const auto& png = small_image();
    if (name.size() % 2 == 0)
      write(folder / name, reinterpret_cast<const char*>(png.data()), png.size());
    else
      write(folder / name, "", 0);
    ++files;
  }
  if (newline < input.size()) write(folder / "labels.tsv", input.data() + newline + 1, input.size() - newline - 1);

  try {
    std::vector<Sample> usable;
    SkipReport skipped;
    const std::vector<Sample> samples = scan_folder(folder.string());
    for (const Sample& sample : samples)
      if (has_usable_label(sample, skipped)) usable.push_back(sample);
    if (usable.size() + skipped.total() != samples.size()) std::abort();
    std::vector<std::string> labels;
    for (const Sample& sample : usable) labels.push_back(sample.label);
    const Charset charset = Charset::from_labels(labels);
    PreprocessOptions preprocess;
    preprocess.width = 40, preprocess.height = 16;
    LoadOptions options;
    options.threads = 1;
    const LoadedDataset loaded = load_dataset(usable, charset, preprocess, options, "fuzz");
    if (loaded.size() + loaded.skipped.total() != usable.size()) std::abort();
  } catch (const DatasetError&) {
  } catch (const ConfigError&) {
  }
  return 0;
}
