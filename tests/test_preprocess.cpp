// Preprocessing: decoding (alpha, corrupt, empty), inversion, auto-crop, resize modes, normalise.
#include "captcha/preprocess.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "core/image_ops.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

std::vector<std::uint8_t> encode(const cv::Mat& image, const std::string& ext = ".png") {
  std::vector<std::uint8_t> bytes;
  cv::imencode(ext, image, bytes);
  return bytes;
}

TEST(Decode, GreyColourAndAlpha) {
  cv::Mat colour(20, 30, CV_8UC3, cv::Scalar(10, 200, 30));
  EXPECT_EQ(decode_image(encode(colour), "c.png").channels(), 1);
  // Fully transparent pixels become white, whatever their colour.
  cv::Mat rgba(20, 30, CV_8UC4, cv::Scalar(0, 0, 0, 0));
  const Image grey = decode_image(encode(rgba), "a.png");
  EXPECT_EQ(grey.at(5, 5), 255);
  EXPECT_EQ(decode_image(encode(colour, ".jpg"), "c.jpg").size(), (ImageSize{30, 20}));
  EXPECT_EQ(decode_image(encode(colour, ".bmp"), "c.bmp").size(), (ImageSize{30, 20}));
}

// Our decoders (libjpeg-turbo, libwebp, stb) give OpenCV's pixels, so models trained before the
// switch away from imgcodecs read the same images.
TEST(Decode, SamePixelsAsOpenCvForEveryFormat) {
  cv::Mat colour(37, 53, CV_8UC3);
  cv::randu(colour, 0, 255);
  cv::GaussianBlur(colour, colour, cv::Size(5, 5), 0);  // photo-like, so JPEG is not all noise
  for (const std::string ext : {".png", ".jpg", ".bmp", ".webp", ".ppm"}) {
    const auto bytes = encode(colour, ext);
    const cv::Mat expected = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
    const cv::Mat got = to_mat(decode_image_bytes(bytes, "x" + ext));
    ASSERT_EQ(got.type(), expected.type()) << ext;
    EXPECT_EQ(cv::norm(got, expected, cv::NORM_INF), 0.0) << ext;
  }
  cv::Mat grey(20, 30, CV_8UC1);
  cv::randu(grey, 0, 255);
  EXPECT_EQ(cv::norm(to_mat(decode_image_bytes(encode(grey), "g.png")), grey, cv::NORM_INF), 0.0);
}

TEST(Encode, PngAndJpegRoundTrip) {
  cv::Mat colour(20, 30, CV_8UC3, cv::Scalar(10, 120, 250));
  EXPECT_EQ(cv::norm(to_mat(decode_image_bytes(encode_image(colour, "png"), "r.png")), colour, cv::NORM_INF), 0.0);
  const cv::Mat jpeg = to_mat(decode_image_bytes(encode_image(colour, "jpg", 95), "r.jpg"));
  EXPECT_LT(cv::norm(jpeg, colour, cv::NORM_INF), 8.0);
  EXPECT_THROW(encode_image(colour, "tiff"), Error);
}

TEST(Decode, ErrorsNameTheFile) {
  try {
    decode_image({}, "empty.png");
    FAIL();
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("empty.png"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("0 bytes"), std::string::npos);
  }
  const std::string junk = "this is not an image at all";
  EXPECT_THROW(decode_image({junk.begin(), junk.end()}, "junk.png"), ImageError);
  auto truncated = encode(testing::draw_text("ab12", 96, 32, 1));
  truncated.resize(truncated.size() / 3);
  EXPECT_THROW(decode_image(truncated, "cut.png"), ImageError);
  EXPECT_THROW(load_image("/no/such/file.png"), ImageError);
}

// Little-endian bytes of `value`, `count` of them.
void put_le(std::vector<std::uint8_t>& out, std::uint64_t value, int count) {
  for (int i = 0; i < count; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// Headers of each format that claim a huge image; no pixel data behind them.
std::vector<std::pair<std::string, std::vector<std::uint8_t>>> image_bombs() {
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> bombs;
  std::vector<std::uint8_t> bmp = {'B', 'M'};  // 54 bytes: 26000 x 26000, 24 bits
  put_le(bmp, 54, 4), put_le(bmp, 0, 4), put_le(bmp, 54, 4), put_le(bmp, 40, 4);
  put_le(bmp, 26000, 4), put_le(bmp, 26000, 4), put_le(bmp, 1, 2), put_le(bmp, 24, 2);
  put_le(bmp, 0, 4), put_le(bmp, 0, 4), put_le(bmp, 2835, 4), put_le(bmp, 2835, 4), put_le(bmp, 0, 8);
  bombs.push_back({"bomb.bmp", bmp});
  // A real PNG's and JPEG's header, the size patched to 30000 x 30000 and 65500 x 65500.
  std::vector<std::uint8_t> png = encode_image(cv::Mat(8, 8, CV_8UC1, cv::Scalar(200)), "png");
  for (int offset : {16, 20}) png[offset] = 0, png[offset + 1] = 0, png[offset + 2] = 0x75, png[offset + 3] = 0x30;
  bombs.push_back({"bomb.png", png});
  std::vector<std::uint8_t> jpeg = encode_image(cv::Mat(8, 8, CV_8UC1, cv::Scalar(200)), "jpg");
  for (std::size_t i = 0; i + 8 < jpeg.size(); ++i)
    if (jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2)) {  // start of frame: height, width
      jpeg[i + 5] = 0xFF, jpeg[i + 6] = 0xDC, jpeg[i + 7] = 0xFF, jpeg[i + 8] = 0xDC;
      break;
    }
  bombs.push_back({"bomb.jpg", jpeg});
  // WebP lossless: 16384 x 16384 in its 14-bit fields.
  std::vector<std::uint8_t> webp = {'R', 'I', 'F', 'F'};
  put_le(webp, 4 + 8 + 5, 4);
  for (char c : std::string("WEBPVP8L")) webp.push_back(static_cast<std::uint8_t>(c));
  put_le(webp, 5, 4);
  webp.push_back(0x2f);
  put_le(webp, 0x3FFFu | (0x3FFFu << 14), 4);
  webp.push_back(0);
  bombs.push_back({"bomb.webp", webp});
  return bombs;
}

TEST(Decode, RefusesAHeaderClaimingMorePixelsThanTheLimitBeforeDecoding) {
  for (const auto& [name, bytes] : image_bombs()) {
    try {
      decode_image_bytes(bytes, name);
      ADD_FAILURE() << name << " was decoded";
    } catch (const ImageError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(name + ": image is ", 0), 0u) << message;
      EXPECT_NE(message.find("pixels, over the limit of 16777216 pixels"), std::string::npos) << message;
    }
  }
  // A lower limit refuses what the default takes.
  const auto small = encode_image(cv::Mat(40, 50, CV_8UC1, cv::Scalar(90)), "png");
  EXPECT_NO_THROW(decode_image_bytes(small, "small.png"));
  ImageLimits limits;
  limits.max_pixels = 1000;
  EXPECT_THROW(decode_image_bytes(small, "small.png", limits), ImageError);
}

TEST(Decode, RefusesTruncatedJpegsAndFilesOverTheByteLimit) {
  const auto jpeg = encode_image(testing::draw_text("ab12", 96, 32, 1), "jpg");
  EXPECT_NO_THROW(decode_image_bytes(jpeg, "whole.jpg"));
  const std::vector<std::uint8_t> cut(jpeg.begin(), jpeg.begin() + jpeg.size() * 2 / 3);
  try {
    decode_image_bytes(cut, "cut.jpg");
    FAIL() << "a truncated JPEG was decoded (libjpeg fills the rest with grey)";
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.jpg: truncated JPEG"), std::string::npos) << e.what();
  }
  ImageLimits limits;
  limits.max_file_bytes = jpeg.size() - 1;
  EXPECT_THROW(decode_image_bytes(jpeg, "big.jpg", limits), ImageError);
  testing::TempDir dir("byte-limit");
  testing::write_file(dir / "big.jpg", std::string(jpeg.begin(), jpeg.end()));
  try {
    read_image_file(dir / "big.jpg", limits);
    FAIL() << "read a file over the byte limit";
  } catch (const ImageError& e) {
    EXPECT_NE(std::string(e.what()).find("big.jpg: " + std::to_string(jpeg.size()) + " bytes, over the limit"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_image_file(dir / "big.jpg").size(), jpeg.size());
}

TEST(Preprocess, OutputSizeAndType) {
  PreprocessOptions options;
  const cv::Mat out = preprocess(testing::draw_text("ab12", 150, 40, 1), options);
  EXPECT_EQ(out.size(), cv::Size(200, 50));
  EXPECT_EQ(out.type(), CV_8UC1);
}

TEST(Preprocess, InvertsLightOnDarkAutomatically) {
  PreprocessOptions options;
  options.clahe = false;
  options.auto_crop = false;
  const cv::Mat dark = preprocess(testing::draw_text("ab12", 200, 50, 1, /*light_on_dark=*/true), options);
  const cv::Mat light = preprocess(testing::draw_text("ab12", 200, 50, 1), options);
  EXPECT_GT(cv::mean(dark)[0], 128);  // background made light
  EXPECT_LT(cv::norm(dark, light, cv::NORM_L1) / dark.total(), 20);
  options.auto_invert = false;
  EXPECT_LT(cv::mean(preprocess(testing::draw_text("ab12", 200, 50, 1, true), options))[0], 128);
  options.force_invert = true;
  EXPECT_LT(cv::mean(preprocess(testing::draw_text("ab12", 200, 50, 1), options))[0], 128);
}

TEST(Preprocess, AutoCropRemovesEmptyMargins) {
  cv::Mat canvas(100, 400, CV_8UC1, cv::Scalar(255));
  testing::draw_text("ab12", 100, 32, 3).copyTo(canvas(cv::Rect(250, 60, 100, 32)));
  PreprocessOptions options;
  options.clahe = false;
  const cv::Mat cropped = preprocess(canvas, options);
  options.auto_crop = false;
  const cv::Mat whole = preprocess(canvas, options);
  // Cropped, the text fills the frame: much more ink than in the uncropped image.
  EXPECT_LT(cv::mean(cropped)[0], cv::mean(whole)[0] - 20);
}

TEST(Preprocess, KeepAspectPadsWideTargets) {
  PreprocessOptions options;
  options.resize = ResizeMode::kKeepAspect;
  options.auto_crop = false;
  options.clahe = false;
  const cv::Mat out = preprocess(testing::draw_text("ab", 50, 50, 1), options);
  EXPECT_EQ(out.size(), cv::Size(200, 50));
  // The right part is padding with the background value.
  EXPECT_GT(cv::mean(out.colRange(120, 200))[0], 200);
}

TEST(Preprocess, StrongThickensStrokes) {
  PreprocessOptions options;
  options.auto_crop = false;
  const cv::Mat image = testing::draw_text("ab12", 200, 50, 1);
  const double plain = cv::mean(preprocess(image, options))[0];
  options.strong = true;
  EXPECT_LT(cv::mean(preprocess(image, options))[0], plain);
}

TEST(Preprocess, EqualiseIsItsContrastStep) {
  PreprocessOptions options;
  options.auto_crop = false;
  options.auto_invert = false;
  cv::Mat image = testing::draw_text("ab12", options.width, options.height, 1);  // no resizing
  image.convertTo(image, -1, 0.3, 120);  // faint, so that CLAHE has work to do
  const cv::Mat equalised = equalise(image, options);
  EXPECT_EQ(cv::norm(preprocess(image, options), equalised, cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(equalised, image, cv::NORM_INF), 0);
  options.strong = true;  // twice the clip limit
  EXPECT_GT(cv::norm(equalise(image, options), equalised, cv::NORM_INF), 0);
  options.strong = false;
  options.clahe = false;
  EXPECT_EQ(cv::norm(equalise(image, options), image, cv::NORM_INF), 0);
}

// The reading path's own CLAHE gives OpenCV's bytes: noise, gradients and flat images, sizes that
// the tiles divide and that they do not (down to smaller than the grid), clip limits that bind
// and that do not, read from a region of a larger image (rows further apart than its width).
// OpenCV itself is given the region as an image of its own: given the region, it extends it with
// the larger image's pixels beyond it.
TEST(ImageOps, ClaheGivesOpenCvsBytes) {
  std::mt19937 rng(5);
  int compared = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int w = 2 + static_cast<int>(rng() % 260), h = 2 + static_cast<int>(rng() % 90);
    const int tiles_x = 1 + static_cast<int>(rng() % 10), tiles_y = 1 + static_cast<int>(rng() % 10);
    const double clip = std::vector<double>{0.5, 2, 3.7, 4, 40}[rng() % 5];
    cv::Mat canvas(h + 3, w + 5, CV_8UC1);
    const int kind = static_cast<int>(rng() % 3);
    for (int y = 0; y < canvas.rows; ++y)
      for (int x = 0; x < canvas.cols; ++x)
        canvas.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>(
            kind == 0 ? rng() % 256 : kind == 1 ? (x * 7 + y * 3 + rng() % 20) % 256 : 100 + rng() % 40);
    const cv::Mat image = canvas(cv::Rect(2, 1, w, h));
    cv::Mat expected;
    cv::createCLAHE(clip, cv::Size(tiles_x, tiles_y))->apply(image.clone(), expected);
    cv::Mat ours(h, w, CV_8UC1);
    image_ops::clahe(image.data, w, h, image.step, clip, tiles_x, tiles_y, ours.data, ours.step);
    ASSERT_EQ(cv::countNonZero(ours != expected), 0)
        << w << "x" << h << ", tiles " << tiles_x << "x" << tiles_y << ", clip " << clip << ", kind " << kind;
    ++compared;
  }
  EXPECT_EQ(compared, 400);
}

// Grey from colour gives cv::cvtColor's bytes for every one of the 2^24 colours, and transparent
// pixels composited on white give OpenCV's float arithmetic's for every grey level and opacity.
TEST(ImageOps, GreyGivesOpenCvsBytes) {
  cv::Mat bgr(4096, 4096, CV_8UC3);
  for (int i = 0; i < 1 << 24; ++i) {
    std::uint8_t* p = bgr.data + 3 * static_cast<std::size_t>(i);
    p[0] = static_cast<std::uint8_t>(i), p[1] = static_cast<std::uint8_t>(i >> 8), p[2] = static_cast<std::uint8_t>(i >> 16);
  }
  cv::Mat expected, ours(bgr.size(), CV_8UC1);
  cv::cvtColor(bgr, expected, cv::COLOR_BGR2GRAY);
  image_ops::to_grey(bgr.data, bgr.cols, bgr.rows, bgr.step, 3, ours.data, ours.step);
  EXPECT_EQ(cv::countNonZero(ours != expected), 0);

  // Every grey level under every opacity, then random BGRA, against OpenCV's compositing.
  const auto composited = [](const cv::Mat& colour, const cv::Mat& alpha) {
    cv::Mat colour_f, alpha_f, out;
    colour.convertTo(colour_f, CV_32F);
    alpha.convertTo(alpha_f, CV_32F, 1.0 / 255);
    cv::Mat blended = colour_f.mul(alpha_f) + (1.0 - alpha_f) * 255.0;
    blended.convertTo(out, CV_8U);
    return out;
  };
  cv::Mat grey_alpha(256, 256, CV_8UC2), planes[2];
  for (int g = 0; g < 256; ++g)
    for (int a = 0; a < 256; ++a) grey_alpha.at<cv::Vec2b>(g, a) = cv::Vec2b(static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(a));
  cv::split(grey_alpha, planes);
  cv::Mat two(256, 256, CV_8UC1);
  image_ops::to_grey(grey_alpha.data, 256, 256, grey_alpha.step, 2, two.data, two.step);
  EXPECT_EQ(cv::countNonZero(two != composited(planes[0], planes[1])), 0);

  cv::Mat bgra(300, 700, CV_8UC4), bgra_planes[4], colour;
  cv::randu(bgra, 0, 256);
  cv::split(bgra, bgra_planes);
  cv::cvtColor(bgra, colour, cv::COLOR_BGRA2GRAY);
  cv::Mat four(bgra.size(), CV_8UC1);
  image_ops::to_grey(bgra.data, bgra.cols, bgra.rows, bgra.step, 4, four.data, four.step);
  EXPECT_EQ(cv::countNonZero(four != composited(colour, bgra_planes[3])), 0);
}

// A random w x h grey image: noise, a gradient, or sparse dark specks on light paper.
cv::Mat random_grey(std::mt19937& rng, int w, int h) {
  cv::Mat image(h, w, CV_8UC1);
  const int kind = static_cast<int>(rng() % 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      image.at<std::uint8_t>(y, x) = static_cast<std::uint8_t>(
          kind == 0 ? rng() % 256 : kind == 1 ? (x * 7 + y * 3) % 256 : (rng() % 10 ? 240 : 10));
  return image;
}

// Resizing gives cv::resize's bytes with INTER_LINEAR and INTER_AREA: growing, shrinking, one
// side each way, whole-number ratios (OpenCV's block averages) and the preprocessing's own target.
TEST(ImageOps, ResizeGivesOpenCvsBytes) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 1500; ++trial) {
    int sw = 2 + static_cast<int>(rng() % 300), sh = 2 + static_cast<int>(rng() % 120);
    int dw = 1 + static_cast<int>(rng() % 300), dh = 1 + static_cast<int>(rng() % 120);
    if (trial % 4 == 0) dw = 200, dh = 50;
    if (trial % 7 == 0) {  // whole-number ratios
      dw = 1 + static_cast<int>(rng() % 80), dh = 1 + static_cast<int>(rng() % 40);
      sw = dw * (1 + static_cast<int>(rng() % 4)), sh = dh * (1 + static_cast<int>(rng() % 4));
    }
    const cv::Mat source = random_grey(rng, sw, sh);
    for (const bool area : {false, true}) {
      cv::Mat expected, ours(dh, dw, CV_8UC1);
      cv::resize(source, expected, cv::Size(dw, dh), 0, 0, area ? cv::INTER_AREA : cv::INTER_LINEAR);
      image_ops::resize(source.data, sw, sh, source.step, ours.data, dw, dh, ours.step,
                        area ? image_ops::Interpolation::kArea : image_ops::Interpolation::kLinear);
      ASSERT_EQ(cv::countNonZero(ours != expected), 0) << sw << "x" << sh << " to " << dw << "x" << dh << (area ? " area" : " linear");
    }
  }
}

// Otsu's threshold is cv::threshold's, on noise, gradients, two-level and flat images.
TEST(ImageOps, OtsuThresholdIsOpenCvs) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 2000; ++trial) {
    const int w = 1 + static_cast<int>(rng() % 120), h = 1 + static_cast<int>(rng() % 60);
    cv::Mat image = trial % 50 == 0 ? cv::Mat(h, w, CV_8UC1, cv::Scalar(static_cast<double>(rng() % 256)))
                                     : random_grey(rng, w, h);
    cv::Mat ignored;
    const double expected = cv::threshold(image, ignored, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
    ASSERT_EQ(image_ops::otsu_threshold(image.data, w, h, image.step), static_cast<int>(expected)) << w << "x" << h;
  }
}

// The strong preprocessing's filters and the reading views' warp give OpenCV's bytes, down to
// images smaller than the blur's seven taps.
TEST(ImageOps, FiltersAndWarpGiveOpenCvsBytes) {
  std::mt19937 rng(13);
  std::uniform_real_distribution<double> unit(-1, 1);
  for (int trial = 0; trial < 1000; ++trial) {
    const int w = trial % 5 == 0 ? 1 + static_cast<int>(rng() % 8) : 2 + static_cast<int>(rng() % 260);
    const int h = trial % 5 == 0 ? 1 + static_cast<int>(rng() % 8) : 2 + static_cast<int>(rng() % 90);
    const cv::Mat image = random_grey(rng, w, h);
    cv::Mat blurred, sharpened, thickened;
    cv::GaussianBlur(image, blurred, cv::Size(0, 0), 1.0);
    cv::addWeighted(image, 1.5, blurred, -0.5, 0, sharpened);
    cv::erode(sharpened, thickened, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2, 2)));
    cv::Mat ours(h, w, CV_8UC1);
    image_ops::gaussian_blur(image.data, w, h, image.step, 1.0, ours.data, ours.step);
    ASSERT_EQ(cv::countNonZero(ours != blurred), 0) << "blur " << w << "x" << h;
    image_ops::add_weighted(image.data, image.step, 1.5f, blurred.data, blurred.step, -0.5f, w, h, ours.data, ours.step);
    ASSERT_EQ(cv::countNonZero(ours != sharpened), 0) << "add " << w << "x" << h;
    image_ops::erode_2x2(sharpened.data, w, h, sharpened.step, ours.data, ours.step);
    ASSERT_EQ(cv::countNonZero(ours != thickened), 0) << "erode " << w << "x" << h;

    if (w < 2 || h < 2) continue;
    const double angle = trial % 3 == 0 ? 10 * unit(rng) : 0, scale = 1 + 0.05 * unit(rng);
    cv::Mat matrix = cv::getRotationMatrix2D(cv::Point2f(w / 2.f, h / 2.f), angle, scale);
    matrix.at<double>(0, 2) += 0.02 * unit(rng) * w;
    matrix.at<double>(1, 2) += 0.05 * unit(rng) * h;
    cv::Mat warped;
    cv::warpAffine(image, warped, matrix, image.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    image_ops::warp_affine(image.data, w, h, image.step, matrix.ptr<double>(), ours.data, w, h, ours.step);
    ASSERT_EQ(cv::countNonZero(ours != warped), 0) << "warp " << w << "x" << h << ", angle " << angle;
  }
}

// preprocess() as it was written on OpenCV: the bytes the bundled model was trained on.
cv::Mat preprocess_with_opencv(cv::Mat grey, const PreprocessOptions& o) {
  const auto median = [](const cv::Mat& pixels) {
    int histogram[256] = {0};
    for (int r = 0; r < pixels.rows; ++r)
      for (int c = 0; c < pixels.cols; ++c) ++histogram[pixels.at<std::uint8_t>(r, c)];
    int seen = 0;
    for (int v = 0; v < 256; ++v)
      if ((seen += histogram[v]) >= static_cast<int>((pixels.total() + 1) / 2)) return v;
    return 255;
  };
  const int band = std::max(1, std::min(grey.rows, grey.cols) / 20);
  cv::Mat border, sides;
  cv::vconcat(grey.rowRange(0, band), grey.rowRange(grey.rows - band, grey.rows), border);
  cv::hconcat(grey.colRange(0, band), grey.colRange(grey.cols - band, grey.cols), sides);
  border = border.reshape(1, 1);
  sides = sides.clone().reshape(1, 1);
  cv::hconcat(border, sides, border);
  if (o.force_invert || (o.auto_invert && median(border) < 128)) cv::bitwise_not(grey, grey);
  if (o.auto_crop) {
    cv::Mat ink, col_ink, row_ink;
    const double threshold = cv::threshold(grey, ink, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
    cv::Rect box(0, 0, grey.cols, grey.rows);
    if (threshold > 0 && cv::countNonZero(ink) <= static_cast<int>(grey.total() / 2)) {
      cv::reduce(ink, col_ink, 0, cv::REDUCE_SUM, CV_32S);
      cv::reduce(ink, row_ink, 1, cv::REDUCE_SUM, CV_32S);
      const int min_col = 255 * std::max(1, grey.rows / 25), min_row = 255 * std::max(1, grey.cols / 50);
      int left = -1, right = -1, top = -1, bottom = -1;
      for (int c = 0; c < grey.cols; ++c)
        if (col_ink.at<int>(0, c) >= min_col) { if (left < 0) left = c; right = c; }
      for (int r = 0; r < grey.rows; ++r)
        if (row_ink.at<int>(r, 0) >= min_row) { if (top < 0) top = r; bottom = r; }
      if (left >= 0 && top >= 0) {
        const int mx = std::max(2, grey.cols / 40), my = std::max(2, grey.rows / 10);
        const cv::Rect found(cv::Point(std::max(0, left - mx), std::max(0, top - my)),
                             cv::Point(std::min(grey.cols, right + 1 + mx), std::min(grey.rows, bottom + 1 + my)));
        if (found.width >= grey.cols / 8 && found.height >= grey.rows / 4) box = found;
      }
    }
    grey = grey(box).clone();
  }
  if (o.clahe) cv::createCLAHE(o.strong ? o.clahe_clip * 2 : o.clahe_clip, cv::Size(o.clahe_tiles, o.clahe_tiles))->apply(grey, grey);
  if (o.strong) {
    cv::Mat blurred, sharpened;
    cv::GaussianBlur(grey, blurred, cv::Size(0, 0), 1.0);
    cv::addWeighted(grey, 1.5, blurred, -0.5, 0, sharpened);
    cv::erode(sharpened, grey, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2, 2)));
  }
  const auto resize = [&](cv::Size to) {
    cv::Mat out;
    cv::resize(grey, out, to, 0, 0, (to.width < grey.cols || to.height < grey.rows) ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
  };
  const cv::Size target(o.width, o.height);
  if (o.resize == ResizeMode::kStretch) return resize(target);
  const int scaled_width = std::max(1, static_cast<int>(std::lround(static_cast<double>(grey.cols) * o.height / grey.rows)));
  if (scaled_width >= o.width) return resize(target);
  const cv::Mat scaled = resize(cv::Size(scaled_width, o.height));
  cv::Mat out(target, CV_8UC1, cv::Scalar(median(scaled)));
  scaled.copyTo(out(cv::Rect(0, 0, scaled_width, o.height)));
  return out;
}

// The whole preprocessing, every option, gives the bytes it gave on OpenCV: text of several
// sizes on light and dark paper, with noise, in images smaller and larger than the input.
TEST(Preprocess, GivesTheBytesItGaveOnOpenCv) {
  std::mt19937 rng(14);
  for (int trial = 0; trial < 600; ++trial) {
    const int w = 24 + static_cast<int>(rng() % 300), h = 16 + static_cast<int>(rng() % 90);
    cv::Mat image = testing::draw_text("ab12", w, h, rng(), /*light_on_dark=*/trial % 3 == 0);
    if (trial % 4 == 1) {
      cv::Mat noise(h, w, CV_8UC1);
      cv::randu(noise, 0, 60);
      image = image - noise;
    }
    PreprocessOptions o;
    o.auto_crop = trial % 2 == 0;
    o.force_invert = trial % 11 == 0;
    o.clahe = trial % 5 != 0;
    o.strong = trial % 3 == 1;
    o.resize = trial % 4 == 3 ? ResizeMode::kKeepAspect : ResizeMode::kStretch;
    if (trial % 6 == 0) o.width = 96, o.height = 32;
    const cv::Mat expected = preprocess_with_opencv(image.clone(), o);
    const cv::Mat ours = preprocess(image, o);
    ASSERT_EQ(cv::countNonZero(ours != expected), 0) << "trial " << trial << ", " << w << "x" << h;
    for (int view = 1; view < kMaxReadingViews; view += 2) {
      // The views as they were drawn on OpenCV.
      static constexpr double kShift[kMaxReadingViews][3] = {{0, 0, 1},     {-0.01, 0, 1}, {0.01, 0, 1}, {0, -0.03, 1},
                                                             {0, 0.03, 1}, {0, 0, 0.96},  {0, 0, 1.04}};
      cv::Mat matrix = cv::getRotationMatrix2D(cv::Point2f(expected.cols / 2.f, expected.rows / 2.f), 0, kShift[view][2]);
      matrix.at<double>(0, 2) += kShift[view][0] * expected.cols;
      matrix.at<double>(1, 2) += kShift[view][1] * expected.rows;
      cv::Mat viewed;
      cv::warpAffine(expected, viewed, matrix, expected.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      ASSERT_EQ(cv::countNonZero(reading_view(ours, view) != viewed), 0) << "trial " << trial << ", view " << view;
    }
  }
}

// The views read by test-time augmentation: the image itself, then shifts by 1% of the width and
// 3% of the height either way and scalings by 4% about the centre.
TEST(Preprocess, ReadingViewsShiftAndScaleTheImage) {
  cv::Mat image(50, 200, CV_8UC1, cv::Scalar(255));
  image.col(100).setTo(0);  // a dark column at x = 100 and a dark row at y = 20
  image.row(20).setTo(0);
  // The index of the darkest column (dim 0) or row (dim 1).
  const auto darkest = [](const cv::Mat& m, int dim) {
    cv::Mat sums;
    cv::reduce(m, sums, dim, cv::REDUCE_SUM, CV_32S);
    cv::Point at;
    cv::minMaxLoc(sums, nullptr, nullptr, &at);
    return dim == 0 ? at.x : at.y;
  };
  const auto darkest_column = [&](const cv::Mat& m) { return darkest(m, 0); };
  const auto darkest_row = [&](const cv::Mat& m) { return darkest(m, 1); };
  EXPECT_EQ(cv::norm(reading_view(image, 0), image, cv::NORM_INF), 0);
  const int expected_x[kMaxReadingViews] = {100, 98, 102, 100, 100, 100, 100};
  for (int view = 1; view < kMaxReadingViews; ++view) {
    const cv::Mat seen = reading_view(image, view);
    ASSERT_EQ(seen.size(), image.size()) << view;
    ASSERT_EQ(seen.type(), CV_8UC1) << view;
    EXPECT_GT(cv::norm(seen, image, cv::NORM_INF), 0) << view;
    EXPECT_EQ(darkest_column(seen), expected_x[view]) << view;
  }
  EXPECT_NEAR(darkest_row(reading_view(image, 3)), 18.5, 0.5);  // 3% of 50 rows up
  EXPECT_NEAR(darkest_row(reading_view(image, 4)), 21.5, 0.5);
  EXPECT_NEAR(darkest_row(reading_view(image, 5)), 25 - 5 * 0.96, 0.5);  // towards the centre
  EXPECT_NEAR(darkest_row(reading_view(image, 6)), 25 - 5 * 1.04, 0.5);  // away from it
  EXPECT_THROW(reading_view(image, kMaxReadingViews), ConfigError);
  EXPECT_THROW(reading_view(image, -1), ConfigError);
}

TEST(Preprocess, NormaliseMapsToMeanStd) {
  cv::Mat image(2, 2, CV_8UC1);
  image.at<std::uint8_t>(0, 0) = 0, image.at<std::uint8_t>(0, 1) = 255;
  image.at<std::uint8_t>(1, 0) = 51, image.at<std::uint8_t>(1, 1) = 255;
  PreprocessOptions options;  // mean 0.5, std 0.5
  float out[4];
  normalise_into(image, options, out);
  EXPECT_FLOAT_EQ(out[0], -1.0f);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
  EXPECT_NEAR(out[2], -0.6f, 1e-6);
}

TEST(PreprocessOptions, InputSizeShrinksToSmallerImagesOnly) {
  const auto fitted = [](int width, int height) {
    PreprocessOptions options;  // 200x50
    fit_input_size(options, {width, height});
    return std::to_string(options.width) + "x" + std::to_string(options.height);
  };
  EXPECT_EQ(fitted(150, 40), "152x40");  // Gregwar/Captcha's size: scale 0.75, sides rounded up to 4
  EXPECT_EQ(fitted(180, 60), "180x48");  // the narrower side sets the scale
  EXPECT_EQ(fitted(200, 50), "200x50");
  EXPECT_EQ(fitted(215, 80), "200x50");  // larger images are shrunk by the preprocessing, as before
  EXPECT_EQ(fitted(60, 20), "128x32");   // no smaller than kMinInputScale of the size
  EXPECT_EQ(fitted(0, 0), "200x50");     // no readable image: unchanged
}

TEST(PreprocessOptions, JsonRoundTripAndValidation) {
  PreprocessOptions options;
  options.width = 320, options.resize = ResizeMode::kKeepAspect, options.strong = true;
  const auto back = nlohmann::json(options).get<PreprocessOptions>();
  EXPECT_EQ(back.width, 320);
  EXPECT_EQ(back.resize, ResizeMode::kKeepAspect);
  EXPECT_TRUE(back.strong);
  EXPECT_THROW(nlohmann::json({{"width", 2}}).get<PreprocessOptions>(), ConfigError);
  EXPECT_THROW(nlohmann::json({{"resize", "zoom"}}).get<PreprocessOptions>(), ConfigError);
  // Values a crafted model file could state that would abort OpenCV or divide by zero.
  EXPECT_THROW(nlohmann::json({{"clahe_tiles", 100000}}).get<PreprocessOptions>(), ConfigError);
  EXPECT_THROW(nlohmann::json({{"clahe_clip", -1.0}}).get<PreprocessOptions>(), ConfigError);
  EXPECT_THROW(nlohmann::json({{"std", 0.0}}).get<PreprocessOptions>(), ConfigError);
  EXPECT_NO_THROW(nlohmann::json({{"clahe_tiles", kMaxClaheTiles}}).get<PreprocessOptions>());
}

}  // namespace
}  // namespace captcha
