// Image decoding and the one preprocessing path shared by training and inference:
// decode -> grey -> (invert) -> (auto-crop) -> CLAHE -> (strong) -> resize -> normalise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "captcha/image.h"
#include "captcha/image_io.h"

namespace captcha {

enum class ResizeMode {
  kStretch,    // scale to width x height, as the reference designs do
  kKeepAspect  // scale to the height, keep the aspect ratio, pad or squeeze to the width
};

inline constexpr int kMaxClaheTiles = 64;

struct PreprocessOptions {
  int width = 200;
  int height = 50;
  ResizeMode resize = ResizeMode::kStretch;
  bool auto_invert = true;   // invert light-on-dark images so text is dark on light
  bool force_invert = false; // always invert
  bool auto_crop = true;     // crop to the text's bounding box (with a margin)
  bool clahe = true;
  double clahe_clip = 2.0;
  int clahe_tiles = 8;  // tiles per side, 1 to kMaxClaheTiles
  bool strong = false;  // thicken thin strokes and sharpen
  float mean = 0.5f;    // normalised value = (pixel / 255 - mean) / std
  float std = 0.5f;
};

void to_json(nlohmann::json& out, const PreprocessOptions& options);
// Missing keys keep their defaults. Throws ConfigError on a bad value.
void from_json(const nlohmann::json& in, PreprocessOptions& options);

// Fits the input size to images typically `image_size`: when they are smaller than
// `options`' width x height, the input shrinks to their scale (keeping its own shape, down to
// kMinInputScale of it) instead of enlarging them, which adds no detail, only compute; each side
// of a shrunk size is rounded up to a multiple of 4. Larger images leave the size as it is.
constexpr double kMinInputScale = 0.64;
void fit_input_size(PreprocessOptions& options, ImageSize image_size);

// An 8-bit image of 1 to 4 channels (grey, grey + alpha, BGR, BGRA) as grey, transparent pixels
// composited on white, as decode_image() makes it. Throws ImageError naming `name` for an image
// under 2x2 pixels or over `limits`' pixel count.
Image to_grey(const Image& image, const std::string& name, const ImageLimits& limits = {});

// Decodes image bytes (png, jpg, bmp, ...) to 8-bit grey; transparent pixels are composited on
// white. `name` is used in the error message. Throws ImageError, also for images over `limits`.
Image decode_image(const std::vector<std::uint8_t>& bytes, const std::string& name,
                   const ImageLimits& limits = {});
// Reads and decodes a file. Throws ImageError (missing, empty, unreadable, corrupt, over `limits`).
Image load_image(const std::string& path, const ImageLimits& limits = {});

// preprocess()'s contrast step on an 8-bit grey image: CLAHE where `options` asks for it (with twice
// the clip limit under `strong`); otherwise the image itself.
Image equalise(const Image& grey, const PreprocessOptions& options);

// Applies the preprocessing to an 8-bit grey image; returns a grey image of width x height.
// Throws ConfigError for an empty or colour image.
Image preprocess(const Image& grey, const PreprocessOptions& options);

// Test-time augmentation: the views of a preprocessed image a model may read together, averaging
// its per-step probabilities over them (see ReadOptions::views). View 0 is the image itself; the
// others shift it by 1% of its width or 3% of its height, or scale it by 4%, about its centre
// (edges repeated), as the light training jitter does. At most kMaxReadingViews.
inline constexpr int kMaxReadingViews = 7;
Image reading_view(const Image& preprocessed, int view);

// Writes a preprocessed image as normalised floats (height * width values) into `out`.
void normalise_into(const Image& preprocessed, const PreprocessOptions& options, float* out);

}  // namespace captcha
