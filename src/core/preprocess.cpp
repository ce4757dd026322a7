// Image decoding and preprocessing, the same code path for training and inference.
#include "captcha/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "image_ops.h"
#include "json_fields.h"

namespace captcha {

void to_json(nlohmann::json& out, const PreprocessOptions& o) {
  out = {{"width", o.width},
         {"height", o.height},
         {"resize", o.resize == ResizeMode::kStretch ? "stretch" : "keep-aspect"},
         {"auto_invert", o.auto_invert},
         {"force_invert", o.force_invert},
         {"auto_crop", o.auto_crop},
         {"clahe", o.clahe},
         {"clahe_clip", o.clahe_clip},
         {"clahe_tiles", o.clahe_tiles},
         {"strong", o.strong},
         {"mean", o.mean},
         {"std", o.std}};
}

void from_json(const nlohmann::json& in, PreprocessOptions& o) {
  o = PreprocessOptions{};
  o.width = json_fields::int_field(in, "width", o.width);
  o.height = json_fields::int_field(in, "height", o.height);
  const std::string resize = in.value("resize", std::string("stretch"));
  if (resize != "stretch" && resize != "keep-aspect")
    throw ConfigError("unknown resize mode '" + resize + "' (expected stretch or keep-aspect)");
  o.resize = resize == "stretch" ? ResizeMode::kStretch : ResizeMode::kKeepAspect;
  o.auto_invert = in.value("auto_invert", o.auto_invert);
  o.force_invert = in.value("force_invert", o.force_invert);
  o.auto_crop = in.value("auto_crop", o.auto_crop);
  o.clahe = in.value("clahe", o.clahe);
  o.clahe_clip = in.value("clahe_clip", o.clahe_clip);
  o.clahe_tiles = json_fields::int_field(in, "clahe_tiles", o.clahe_tiles);
  o.strong = in.value("strong", o.strong);
  o.mean = json_fields::float_field(in, "mean", o.mean);
  o.std = json_fields::float_field(in, "std", o.std);
  if (o.width < 8 || o.height < 8 || o.width > 4096 || o.height > 1024)
    throw ConfigError("input size " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                      " is out of range (8x8 to 4096x1024)");
  if (!(o.std > 0) || !std::isfinite(o.std) || !std::isfinite(o.mean))
    throw ConfigError("normalisation mean and std must be finite, std positive");
  if (o.clahe_tiles < 1 || o.clahe_tiles > kMaxClaheTiles)
    throw ConfigError("clahe_tiles must be 1 to " + std::to_string(kMaxClaheTiles));
  if (!(o.clahe_clip > 0) || !std::isfinite(o.clahe_clip)) throw ConfigError("clahe_clip must be positive");
}

Image to_grey(const Image& image, const std::string& name, const ImageLimits& limits) {
  if (image.height() < 2 || image.width() < 2)
    throw ImageError(name + ": image is too small (" + std::to_string(image.width()) + "x" +
                     std::to_string(image.height()) + ")");
  if (static_cast<std::int64_t>(image.width()) * image.height() > limits.max_pixels)
    throw ImageError(name + ": image is " + std::to_string(image.width()) + "x" + std::to_string(image.height()) +
                     " pixels, over the limit of " + std::to_string(limits.max_pixels) + " pixels");
  if (image.channels() == 1) return image;
  Image grey(image.width(), image.height());
  image_ops::to_grey(image.data(), image.width(), image.height(), image.stride(), image.channels(), grey.data(),
                     grey.stride());
  return grey;
}

Image decode_image(const std::vector<std::uint8_t>& bytes, const std::string& name, const ImageLimits& limits) {
  return to_grey(decode_image_bytes(bytes, name, limits), name, limits);
}

Image load_image(const std::string& path, const ImageLimits& limits) {
  return decode_image(read_image_file(path, limits), path, limits);
}

namespace {

// The median of the bytes [begin, end).
std::uint8_t median_of(const std::uint8_t* begin, const std::uint8_t* end) {
  int histogram[256] = {0};
  for (const std::uint8_t* p = begin; p != end; ++p) ++histogram[*p];
  const int half = static_cast<int>((end - begin + 1) / 2);
  int seen = 0;
  for (int v = 0; v < 256; ++v)
    if ((seen += histogram[v]) >= half) return static_cast<std::uint8_t>(v);
  return 255;
}

std::uint8_t median_of(const Image& grey) { return median_of(grey.data(), grey.data() + grey.stride() * grey.height()); }

// True when the border (the background, for a captcha) is darker than mid-grey.
bool is_light_on_dark(const Image& grey) {
  const int band = std::max(1, std::min(grey.height(), grey.width()) / 20);
  // The top and bottom bands, then the left and right ones (corners twice).
  std::vector<std::uint8_t> border;
  for (int y : {0, grey.height() - band})
    for (int r = y; r < y + band; ++r) border.insert(border.end(), grey.row(r), grey.row(r) + grey.width());
  for (int r = 0; r < grey.height(); ++r)
    for (int x : {0, grey.width() - band})
      border.insert(border.end(), grey.row(r) + x, grey.row(r) + x + band);
  return median_of(border.data(), border.data() + border.size()) < 128;
}

struct Box {
  int x, y, width, height;
};

// Bounding box of the dark text with a margin, or the whole image when no clear text is found.
Box text_box(const Image& grey) {
  const int w = grey.width(), h = grey.height();
  const Box whole{0, 0, w, h};
  // Ink: the pixels at or below Otsu's threshold (OpenCV's THRESH_BINARY_INV | THRESH_OTSU).
  const int threshold = image_ops::otsu_threshold(grey.data(), w, h, grey.stride());
  std::vector<int> col_ink(w, 0), row_ink(h, 0);
  long ink = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (grey.at(x, y) <= threshold) ++col_ink[x], ++row_ink[y], ++ink;
  if (threshold <= 0 || ink > static_cast<long>(grey.stride()) * h / 2) return whole;  // no clear split
  // A row or column counts as text when enough of it is ink: drops specks and thin noise.
  const int min_col = std::max(1, h / 25), min_row = std::max(1, w / 50);
  int left = -1, right = -1, top = -1, bottom = -1;
  for (int c = 0; c < w; ++c)
    if (col_ink[c] >= min_col) { if (left < 0) left = c; right = c; }
  for (int r = 0; r < h; ++r)
    if (row_ink[r] >= min_row) { if (top < 0) top = r; bottom = r; }
  if (left < 0 || top < 0) return whole;
  const int margin_x = std::max(2, w / 40), margin_y = std::max(2, h / 10);
  const int x0 = std::max(0, left - margin_x), y0 = std::max(0, top - margin_y);
  const Box box{x0, y0, std::min(w, right + 1 + margin_x) - x0, std::min(h, bottom + 1 + margin_y) - y0};
  if (box.width < w / 8 || box.height < h / 4) return whole;  // implausible
  return box;
}

Image resized(const Image& grey, int width, int height) {
  // Area averaging where a side shrinks, bilinear where both grow.
  const auto interpolation = width < grey.width() || height < grey.height() ? image_ops::Interpolation::kArea
                                                                              : image_ops::Interpolation::kLinear;
  Image out(width, height);
  image_ops::resize(grey.data(), grey.width(), grey.height(), grey.stride(), out.data(), width, height, out.stride(),
                    interpolation);
  return out;
}

}  // namespace

void fit_input_size(PreprocessOptions& options, ImageSize image_size) {
  if (image_size.width <= 0 || image_size.height <= 0) return;
  const double scale = std::max(kMinInputScale, std::min({1.0, static_cast<double>(image_size.width) / options.width,
                                                         static_cast<double>(image_size.height) / options.height}));
  if (scale >= 1) return;
  const auto round_up_to_4 = [scale](int side) { return 4 * static_cast<int>(std::ceil(side * scale / 4 - 1e-9)); };
  options.width = round_up_to_4(options.width);
  options.height = round_up_to_4(options.height);
}

Image equalise(const Image& grey, const PreprocessOptions& options) {
  if (!options.clahe) return grey;
  Image equalised(grey.width(), grey.height());
  image_ops::clahe(grey.data(), grey.width(), grey.height(), grey.stride(),
                   options.strong ? options.clahe_clip * 2 : options.clahe_clip, options.clahe_tiles, options.clahe_tiles,
                   equalised.data(), equalised.stride());
  return equalised;
}

Image preprocess(const Image& input, const PreprocessOptions& options) {
  if (input.empty() || input.channels() != 1) throw ConfigError("preprocess expects a non-empty 8-bit grey image");
  Image grey = input;
  if (options.force_invert || (options.auto_invert && is_light_on_dark(grey)))
    for (std::uint8_t* p = grey.data(); p != grey.data() + grey.stride() * grey.height(); ++p) *p = 255 - *p;
  if (options.auto_crop) {
    const Box box = text_box(grey);
    if (box.width != grey.width() || box.height != grey.height()) grey = grey.crop(box.x, box.y, box.width, box.height);
  }
  grey = equalise(grey, options);
  if (options.strong) {
    // Sharpen (1.5 x image - 0.5 x blurred), then thicken dark strokes by one pixel.
    const int w = grey.width(), h = grey.height();
    Image blurred(w, h), sharpened(w, h), thickened(w, h);
    image_ops::gaussian_blur(grey.data(), w, h, grey.stride(), 1.0, blurred.data(), blurred.stride());
    image_ops::add_weighted(grey.data(), grey.stride(), 1.5f, blurred.data(), blurred.stride(), -0.5f, w, h,
                            sharpened.data(), sharpened.stride());
    image_ops::erode_2x2(sharpened.data(), w, h, sharpened.stride(), thickened.data(), thickened.stride());
    grey = std::move(thickened);
  }

  if (options.resize == ResizeMode::kStretch) return resized(grey, options.width, options.height);
  const int scaled_width = std::max(
      1, static_cast<int>(std::lround(static_cast<double>(grey.width()) * options.height / grey.height())));
  if (scaled_width >= options.width) return resized(grey, options.width, options.height);  // too wide: squeeze
  const Image scaled = resized(grey, scaled_width, options.height);
  Image out(options.width, options.height, 1, median_of(scaled));
  for (int y = 0; y < options.height; ++y) std::memcpy(out.row(y), scaled.row(y), scaled_width);
  return out;
}

Image reading_view(const Image& preprocessed, int view) {
  struct View {
    double dx, dy, scale;  // shifts as shares of the width and height
  };
  static constexpr View kViews[kMaxReadingViews] = {{0, 0, 1},     {-0.01, 0, 1}, {0.01, 0, 1}, {0, -0.03, 1},
                                                    {0, 0.03, 1}, {0, 0, 0.96},  {0, 0, 1.04}};
  if (view < 0 || view >= kMaxReadingViews)
    throw ConfigError("reading_view: view " + std::to_string(view) + " is not in 0-" + std::to_string(kMaxReadingViews - 1));
  if (view == 0) return preprocessed;
  const View& v = kViews[view];
  // Scaled about the centre (as cv::getRotationMatrix2D with no angle builds it), then shifted.
  const int w = preprocessed.width(), h = preprocessed.height();
  const double cx = static_cast<float>(w) / 2.f, cy = static_cast<float>(h) / 2.f;
  const double matrix[6] = {v.scale, 0, (1 - v.scale) * cx + v.dx * w, -0., v.scale, (1 - v.scale) * cy + v.dy * h};
  Image out(w, h);
  image_ops::warp_affine(preprocessed.data(), w, h, preprocessed.stride(), matrix, out.data(), w, h, out.stride());
  return out;
}

void normalise_into(const Image& image, const PreprocessOptions& options, float* out) {
  const float scale = 1.0f / (255.0f * options.std), shift = options.mean / options.std;
  for (int r = 0; r < image.height(); ++r) {
    const std::uint8_t* row = image.row(r);
    for (int c = 0; c < image.width(); ++c) *out++ = row[c] * scale - shift;
  }
}

}  // namespace captcha
