// Fuzz target: image bytes from outside, decoded and read the way the reader reads them.
//
// Every input ends in a prepared image or an ImageError: decode_image (every format, the header
// checked against the limits before any pixel is decoded), then the preprocessing the input's
// last byte selects (its bits switch auto-crop, inversion, strong strokes, CLAHE and the resize
// mode), every reading view, and the normalised floats the network would get.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "captcha/errors.h"
#include "captcha/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace captcha;
  const std::vector<std::uint8_t> bytes(data, data + size);
  // Lower than the defaults, so that an execution stays fast; the checks are the same.
  ImageLimits limits;
  limits.max_pixels = std::int64_t{1} << 20;
  limits.max_file_bytes = std::size_t{1} << 20;
  Image grey;
  try {
    grey = decode_image(bytes, "input", limits);
  } catch (const ImageError&) {
    return 0;
  }
  if (grey.empty() || grey.channels() != 1) std::abort();  // decode_image promises 8-bit grey

  const std::uint8_t flags = size > 0 ? data[size - 1] : 0;
  PreprocessOptions options;
  options.auto_crop = flags & 1;
  options.force_invert = flags & 2;
  options.strong = flags & 4;
  options.clahe = flags & 8;
  options.resize = flags & 16 ? ResizeMode::kKeepAspect : ResizeMode::kStretch;
  if (flags & 32) options.width = 96, options.height = 32;
  const Image prepared = preprocess(grey, options);
  if (prepared.height() != options.height || prepared.width() != options.width || prepared.channels() != 1) std::abort();
  std::vector<float> values(static_cast<std::size_t>(options.width) * options.height);
  for (int view = 0; view < kMaxReadingViews; ++view) {
    normalise_into(reading_view(prepared, view), options, values.data());
    for (float v : values)
      if (!std::isfinite(v)) std::abort();
  }
  return 0;
}
