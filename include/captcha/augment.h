// Random distortions of preprocessed (8-bit grey) training images, as the trainer applies them
// (drawn with OpenCV; no LibTorch).
//
//   std::mt19937_64 rng(seed);
//   captcha::Image jittered = captcha::augment_light(image, rng, model.preprocess);
#pragma once

#include <random>

#include "captcha/image.h"
#include "captcha/preprocess.h"

namespace captcha {

// "light": small rotation, scale and shift; a thin dark line across half the images; one image
// in kOutlineShare outlined (see outline()). `p`: the preprocessing the images went through.
inline constexpr double kOutlineShare = 0.1;
Image augment_light(const Image& image, std::mt19937_64& rng, const PreprocessOptions& p);

// "captcha": rotation, scale, shear and shift, sine warps, lines and arcs in any shade,
// contrast, blur and noise.
Image augment_captcha(const Image& image, std::mt19937_64& rng);

// The image as an edge filter draws it (PHP's GD does so for IMG_FILTER_EDGEDETECT, which CAPTCHA
// libraries apply to some of their images): mid-grey paper and each stroke drawn as a dark and a
// light rim, the light one inside or outside at random; shrunk into the frame first by up to a
// quarter (text crops find no clear ink in such images, so their text is smaller); then
// contrast-equalised as preprocess() equalises the real ones.
Image outline(const Image& image, std::mt19937_64& rng, const PreprocessOptions& p);

}  // namespace captcha
