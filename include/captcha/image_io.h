// Image files without OpenCV's imgcodecs, which loads GDAL and about 120 shared libraries: some
// 120 ms at every process start on this project's machine, more than the whole reading of an
// image. Decoding: JPEG through libjpeg-turbo (the decoder OpenCV uses, so the pixels are the
// same), WebP through libwebp, PNG, BMP, GIF (first frame), TGA and PNM through stb_image.
// Encoding: PNG and JPEG through stb_image_write. Images are 8-bit, colour channels in OpenCV's BGR(A) order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "captcha/image.h"

namespace captcha {

// What an image from outside may cost before any of it is decoded: its encoded size, and its
// pixel count as its header states it (checked for every format before pixels are decoded, so a
// few bytes claiming a huge image cost nothing).
struct ImageLimits {
  std::size_t max_file_bytes = std::size_t{32} << 20;  // 32 MiB
  std::int64_t max_pixels = std::int64_t{4096} * 4096;
};

// The image as stored: 1 (grey), 2 (grey + alpha), 3 (BGR) or 4 (BGRA) channels, 8-bit.
// Throws ImageError naming `name` when the bytes are not a decodable image, are truncated, or
// are over `limits`.
Image decode_image_bytes(const std::vector<std::uint8_t>& bytes, const std::string& name,
                         const ImageLimits& limits = {});

// The bytes of file `path`, refused (ImageError naming it) when missing, a folder, unreadable or
// larger than limits.max_file_bytes, before it is read.
std::vector<std::uint8_t> read_image_file(const std::string& path, const ImageLimits& limits = {});

// Encodes a 1-, 3- or 4-channel 8-bit image as "png" or "jpg". Throws Error.
std::vector<std::uint8_t> encode_image(const Image& image, const std::string& format, int jpeg_quality = 95);

// Writes `image` to `path`, the format chosen by the extension (.png, .jpg, .jpeg). Throws Error.
void write_image(const std::string& path, const Image& image);

// Reads an image file as 3-channel BGR. Throws ImageError naming `path`.
Image read_colour_image(const std::string& path, const ImageLimits& limits = {});

}  // namespace captcha
