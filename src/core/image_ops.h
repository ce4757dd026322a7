// Image operations of the reading path on plain 8-bit buffers, without OpenCV: each gives the
// same bytes as the OpenCV function it stands for (tested against it), so that models trained
// with one read the same with the other (internal to the core library).
#pragma once

#include <cstddef>
#include <cstdint>

namespace captcha::image_ops {

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

}  // namespace captcha::image_ops
