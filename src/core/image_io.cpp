// Image decoding and encoding on libjpeg-turbo and stb (see image_io.h).
#include "captcha/image_io.h"

// jpeglib.h needs <cstdio> before it.
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>
#include <stb_image.h>
#include <stb_image_write.h>
#include <webp/decode.h>

#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>

#include "captcha/errors.h"

namespace captcha {

namespace {

bool is_jpeg(const std::vector<std::uint8_t>& bytes) {
  return bytes.size() > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

// Refuses an image of `width` x `height` pixels over the limit, before it is decoded.
// Refuses encoded image data of `size` bytes over the limit.
void check_file_bytes(std::uint64_t size, const ImageLimits& limits, const std::string& name) {
  if (size > limits.max_file_bytes)
    throw ImageError(name + ": " + std::to_string(size) + " bytes, over the limit of " +
                     std::to_string(limits.max_file_bytes) + " bytes for an image");
}

void check_pixels(std::int64_t width, std::int64_t height, const ImageLimits& limits, const std::string& name) {
  if (width * height > limits.max_pixels)
    throw ImageError(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels, over the limit of " + std::to_string(limits.max_pixels) + " pixels");
}

// libjpeg reports errors through a callback that must not return: it jumps back here. Of the
// warnings, the data running out (a truncated file, which libjpeg fills with grey) is noted.
struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  bool truncated = false;
};

// The decoded image, or empty where the bytes are not a JPEG libjpeg can read. Throws
// ImageError for a truncated file or one over the limits.
Image decode_jpeg(const std::vector<std::uint8_t>& bytes, const ImageLimits& limits, const std::string& name) {
  jpeg_decompress_struct info;
  JpegError error;
  info.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = [](j_common_ptr common) { std::longjmp(reinterpret_cast<JpegError*>(common->err)->jump, 1); };
  error.manager.emit_message = [](j_common_ptr common, int level) {
    if (level >= 0) return;  // trace messages
    if (common->err->msg_code == JWRN_JPEG_EOF) reinterpret_cast<JpegError*>(common->err)->truncated = true;
  };
  Image image;  // constructed before setjmp, so the jump leaves nothing half-built behind
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&info);
    return {};
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  const std::int64_t width = info.image_width, height = info.image_height;
  if (width * height > limits.max_pixels) {
    jpeg_destroy_decompress(&info);
    check_pixels(width, height, limits, name);  // throws
  }
  const bool grey = info.jpeg_color_space == JCS_GRAYSCALE;
  info.out_color_space = grey ? JCS_GRAYSCALE : JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  image = Image(static_cast<int>(info.output_width), static_cast<int>(info.output_height), grey ? 1 : 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = image.row(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (error.truncated) throw ImageError(name + ": truncated JPEG (the data ends before the image does)");
  return image;
}

bool is_webp(const std::vector<std::uint8_t>& bytes) {
  return bytes.size() > 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 && std::memcmp(bytes.data() + 8, "WEBP", 4) == 0;
}

// The image with its first and third channels swapped: RGB(A) to BGR(A) and back.
void swap_red_blue(Image& image) {
  if (image.channels() < 3) return;
  for (int y = 0; y < image.height(); ++y) {
    std::uint8_t* p = image.row(y);
    for (int x = 0; x < image.width(); ++x, p += image.channels()) std::swap(p[0], p[2]);
  }
}

// A copy of `width` x `height` pixels of `channels` channels stored contiguously.
Image copy_pixels(const std::uint8_t* pixels, int width, int height, int channels) {
  Image image(width, height, channels);
  std::memcpy(image.data(), pixels, image.stride() * static_cast<std::size_t>(height));
  return image;
}

Image decode_webp(const std::vector<std::uint8_t>& bytes, const ImageLimits& limits, const std::string& name) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK) return {};
  check_pixels(features.width, features.height, limits, name);
  int width = 0, height = 0;
  const bool alpha = features.has_alpha;
  std::unique_ptr<std::uint8_t, void (*)(void*)> pixels(
      alpha ? WebPDecodeBGRA(bytes.data(), bytes.size(), &width, &height) : WebPDecodeBGR(bytes.data(), bytes.size(), &width, &height),
      WebPFree);
  if (!pixels) return {};
  return copy_pixels(pixels.get(), width, height, alpha ? 4 : 3);
}

Image decode_with_stb(const std::vector<std::uint8_t>& bytes, const ImageLimits& limits, const std::string& name) {
  int width = 0, height = 0, channels = 0;
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return {};
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels) == 0) return {};
  check_pixels(width, height, limits, name);
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 0), stbi_image_free);
  // The decoder's own figures, which a malformed header can make differ from stbi_info's.
  if (!pixels || width < 1 || height < 1 || channels < 1 || channels > 4) return {};
  check_pixels(width, height, limits, name);
  Image image = copy_pixels(pixels.get(), width, height, channels);
  swap_red_blue(image);
  return image;
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
}

}  // namespace

Image decode_image_bytes(const std::vector<std::uint8_t>& bytes, const std::string& name, const ImageLimits& limits) {
  if (bytes.empty()) throw ImageError(name + ": empty file (0 bytes)");
  check_file_bytes(bytes.size(), limits, name);
  Image image = is_jpeg(bytes)   ? decode_jpeg(bytes, limits, name)
                : is_webp(bytes) ? decode_webp(bytes, limits, name)
                                 : decode_with_stb(bytes, limits, name);
  if (image.empty()) throw ImageError(name + ": cannot decode image (corrupt or unsupported format)");
  return image;
}

std::vector<std::uint8_t> encode_image(const Image& image, const std::string& format, int jpeg_quality) {
  if (image.empty() || image.channels() == 2) throw Error("encode_image: needs a non-empty image with 1, 3 or 4 channels");
  // stb writes RGB(A): colour images are copied with their channels swapped, grey ones used as they are.
  Image swapped;
  if (image.channels() >= 3) {
    swapped = image;
    swap_red_blue(swapped);
  }
  const Image& rgb = image.channels() >= 3 ? swapped : image;
  std::vector<std::uint8_t> out;
  int ok = 0;
  if (format == "png") ok = stbi_write_png_to_func(append_bytes, &out, rgb.width(), rgb.height(), rgb.channels(), rgb.data(), static_cast<int>(rgb.stride()));
  else if (format == "jpg" || format == "jpeg") ok = stbi_write_jpg_to_func(append_bytes, &out, rgb.width(), rgb.height(), rgb.channels(), rgb.data(), jpeg_quality);
  else throw Error("encode_image: unknown format '" + format + "' (png or jpg)");
  if (!ok) throw Error("encode_image: " + format + " encoding failed");
  return out;
}

void write_image(const std::string& path, const Image& image) {
  const auto dot = path.rfind('.');
  std::string extension = dot == std::string::npos ? "" : path.substr(dot + 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (extension != "png" && extension != "jpg" && extension != "jpeg")
    throw Error(path + ": cannot write an image with this extension (use .png or .jpg)");
  const auto bytes = encode_image(image, extension);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error(path + ": cannot write");
}

std::vector<std::uint8_t> read_image_file(const std::string& path, const ImageLimits& limits) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw ImageError(path + ": is a folder, not an image");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImageError(path + ": cannot open (no such file or no permission)");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) check_file_bytes(size, limits, path);
  std::vector<std::uint8_t> bytes;
  if (!ec) bytes.reserve(static_cast<std::size_t>(size));
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return bytes;
}

Image read_colour_image(const std::string& path, const ImageLimits& limits) {
  const Image image = decode_image_bytes(read_image_file(path, limits), path, limits);
  if (image.channels() == 3) return image;
  // Grey repeated in each channel; alpha dropped.
  Image bgr(image.width(), image.height(), 3);
  for (int y = 0; y < image.height(); ++y) {
    const std::uint8_t* in = image.row(y);
    std::uint8_t* out = bgr.row(y);
    for (int x = 0; x < image.width(); ++x, in += image.channels(), out += 3) {
      const bool grey = image.channels() <= 2;
      out[0] = in[0];
      out[1] = in[grey ? 0 : 1];
      out[2] = in[grey ? 0 : 2];
    }
  }
  return bgr;
}

}  // namespace captcha
