// Image operations of the reading path on plain 8-bit buffers, without OpenCV: each gives the
// same bytes as the OpenCV function it stands for (tested against it), so that models trained
// with one read the same with the other (internal to the core library).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace captcha::image_ops {

// Index p of a line of n values mirrored about its ends, the end values not repeated (OpenCV's
// BORDER_REFLECT_101).
inline int reflect101(int p, int n) {
  if (n == 1) return 0;
  while (p < 0 || p >= n) p = p < 0 ? -p : 2 * n - 2 - p;
  return p;
}

// Rounded half to even and clamped, as OpenCV's saturate_cast<uchar>(float).
inline std::uint8_t to_byte(float v) { return static_cast<std::uint8_t>(std::clamp<long>(std::lrint(v), 0, 255)); }

// Contrast-limited adaptive histogram equalisation of a w x h grey image (rows `stride` bytes
// apart) into `dst` (rows `dst_stride` apart), as cv::createCLAHE(clip, {tiles_x, tiles_y})
// applies it to an image of its own: a clipped histogram's mapping per tile (the image extended by
// mirroring to whole tiles where it does not divide), blended bilinearly between the four
// nearest tiles. (Given a region of a larger image, OpenCV extends it with that image's pixels.)
void clahe(const std::uint8_t* src, int w, int h, std::size_t stride, double clip, int tiles_x, int tiles_y,
           std::uint8_t* dst, std::size_t dst_stride);

// A w x h image of 1 (grey), 2 (grey + alpha), 3 (BGR) or 4 (BGRA) channels, interleaved, as 8-bit
// grey: colour weighted as cv::cvtColor(COLOR_BGR2GRAY) weighs it, then transparent pixels
// composited on white in float arithmetic, rounded as cv::Mat::convertTo rounds.
void to_grey(const std::uint8_t* src, int w, int h, std::size_t stride, int channels, std::uint8_t* dst,
             std::size_t dst_stride);

enum class Interpolation { kLinear, kArea };

// Resizes a sw x sh grey image to dw x dh as cv::resize does with INTER_LINEAR or INTER_AREA:
// bilinear in 11-bit fixed point about pixel centres, rounded per column as OpenCV's vector lanes
// round; area averaging in float where both sides shrink (whole blocks in integers where they
// divide), and OpenCV's bilinear variant where one side grows.
void resize(const std::uint8_t* src, int sw, int sh, std::size_t stride, std::uint8_t* dst, int dw, int dh,
            std::size_t dst_stride, Interpolation interpolation);

// cv::warpAffine(INTER_LINEAR, BORDER_REPLICATE) of a w x h grey image into dw x dh, `matrix`
// (2x3, row-major) mapping source to destination: positions in OpenCV's fixed point (1/32 pixel),
// bilinear weights in 15 fractional bits, edge pixels repeated outside the image.
void warp_affine(const std::uint8_t* src, int w, int h, std::size_t stride, const double matrix[6], std::uint8_t* dst,
                 int dw, int dh, std::size_t dst_stride);

// The grey level that best splits a w x h image's histogram into two classes (Otsu's method),
// as cv::threshold(THRESH_OTSU) computes it, in double arithmetic.
int otsu_threshold(const std::uint8_t* src, int w, int h, std::size_t stride);

// cv::GaussianBlur(ksize {0, 0}, sigma) on an 8-bit image: its fixed-point path (taps in 8
// fractional bits, summing to exactly 1), edges mirrored without repeating the edge pixel.
void gaussian_blur(const std::uint8_t* src, int w, int h, std::size_t stride, double sigma, std::uint8_t* dst,
                   std::size_t dst_stride);

// cv::addWeighted(a, alpha, b, beta, 0): each pixel a * alpha + b * beta in float, rounded half to
// even and clamped.
void add_weighted(const std::uint8_t* a, std::size_t a_stride, float alpha, const std::uint8_t* b,
                  std::size_t b_stride, float beta, int w, int h, std::uint8_t* dst, std::size_t dst_stride);

// cv::erode with a 2x2 rectangle (anchor at its lower right): each pixel the darkest of itself and
// its neighbours to the left, above and above left, those inside the image.
void erode_2x2(const std::uint8_t* src, int w, int h, std::size_t stride, std::uint8_t* dst, std::size_t dst_stride);

}  // namespace captcha::image_ops
