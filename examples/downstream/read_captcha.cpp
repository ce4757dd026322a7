// Reads the images named on the command line with the installed bundled model (or the model
// file given by --model), one "path<TAB>text<TAB>confidence" line each.
#include <iostream>
#include <string>
#include <vector>

#include <captcha/errors.h>
#include <captcha/reader.h>
#include <captcha/recogniser.h>

int main(int argc, char** argv) {
  std::string model = CAPTCHA_OCR_MODEL;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::cerr << "usage: read-captcha [--model FILE] IMAGE...\n";
    return 2;
  }
  try {
    const captcha::Recogniser recogniser(model);
    int failures = 0;
    for (const captcha::ReadResult& r : captcha::read_files(recogniser, paths)) {
      if (!r.ok()) {
        std::cerr << r.error << "\n";
        ++failures;
        continue;
      }
      std::cout << r.source << "\t" << r.reading.text << "\t" << r.reading.confidence << "\n";
    }
    return failures ? 1 : 0;
  } catch (const captcha::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
