#include "captcha/generator.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "captcha/charset.h"
#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/opencv_image.h"
#include "captcha/parallel.h"
#include "captcha/utf8.h"

namespace captcha {

namespace fs = std::filesystem;

namespace {

// Font folders of the Debian packages scripts/setup.sh installs. The classic set (sans, serif,
// mono and handwriting-like families) is what the first general models were drawn with
// (--font-set classic); the display set adds rounded, geometric, condensed, stencil-like, comic and brush faces, the kind
// that web CAPTCHAs pick.
const char* const kClassicFontDirs[] = {
    "/usr/share/fonts/truetype/dejavu",         "/usr/share/fonts/truetype/liberation2",
    "/usr/share/fonts/truetype/freefont",       "/usr/share/fonts/truetype/lato",
    "/usr/share/fonts/opentype/linux-libertine", "/usr/share/fonts/opentype/cantarell",
    "/usr/share/fonts/truetype/quicksand",      "/usr/share/fonts/opentype/comic-neue",
    "/usr/share/fonts/truetype/fifthhorseman",  "/usr/share/fonts/truetype/breip",
    "/usr/share/fonts/opentype/dancingscript",
};
const char* const kDisplayFontDirs[] = {
    "/usr/share/fonts/opentype/apropal",       "/usr/share/fonts/opentype/bebas-neue",
    "/usr/share/fonts/opentype/cabin",         "/usr/share/fonts/opentype/dosis",
    "/usr/share/fonts/opentype/jura",          "/usr/share/fonts/opentype/kaushanscript",
    "/usr/share/fonts/opentype/league-spartan", "/usr/share/fonts/opentype/lobster",
    "/usr/share/fonts/opentype/millimetre",    "/usr/share/fonts/opentype/play",
    "/usr/share/fonts/opentype/radisnoir",     "/usr/share/fonts/opentype/roboto/slab",
    "/usr/share/fonts/truetype/beteckna",      "/usr/share/fonts/truetype/cabinsketch",
    "/usr/share/fonts/truetype/comfortaa",     "/usr/share/fonts/truetype/eurofurence",
    "/usr/share/fonts/truetype/fantasque-sans/Normal", "/usr/share/fonts/truetype/humor-sans",
    "/usr/share/fonts/truetype/leckerli-one",  "/usr/share/fonts/truetype/manrope",
    "/usr/share/fonts/truetype/monofur",       "/usr/share/fonts/truetype/okolaks",
    "/usr/share/fonts/truetype/opendin",       "/usr/share/fonts/truetype/reggae",
    "/usr/share/fonts/truetype/routed-gothic", "/usr/share/fonts/truetype/staypuft",
    "/usr/share/fonts/truetype/tomsontalks",   "/usr/share/fonts/truetype/train",
    "/usr/share/fonts/truetype/ubuntu-title",
};

// The extended set adds these families to all: more sans, serif, mono, condensed and
// handwriting faces (URW's clones of the PostScript 35 among them).
const char* const kExtendedFontDirs[] = {
    "/usr/share/fonts/opentype/urw-base35",    "/usr/share/fonts/truetype/croscore",
    "/usr/share/fonts/truetype/open-sans",     "/usr/share/fonts/truetype/oxygen",
    "/usr/share/fonts/opentype/ebgaramond",    "/usr/share/fonts/truetype/tuffy",
    "/usr/share/fonts/opentype/yanone-kaffeesatz", "/usr/share/fonts/truetype/hack",
    "/usr/share/fonts/truetype/inconsolata",   "/usr/share/fonts/opentype/league-mono",
    "/usr/share/fonts/opentype/sortsmill",     "/usr/share/fonts/truetype/kristi",
    "/usr/share/fonts/truetype/summersby",
};
// Families in no other set, for checks of reading faces never trained on (--font-set held-out):
// the Arkandis Digital Foundry's serif, sans and display families, Carlito and Caladea, Fira
// Code, and two handwriting faces.
const char* const kHeldOutFontDirs[] = {
    "/usr/share/fonts/truetype/adf",      "/usr/share/fonts/truetype/crosextra",
    "/usr/share/fonts/truetype/firacode", "/usr/share/fonts/truetype/femkeklaver",
    "/usr/share/fonts/truetype/isabella",
};

// Weights too faint to read once shrunk, and fonts that are not text faces.
bool unsuitable_font(const std::string& file_name) {
  for (const char* part : {"Thin", "Hairline", "ExtraLight", "Light", "Math", "LinBiolinum_K", "LinLibertine_DR"})
    if (file_name.find(part) != std::string::npos) return true;
  return false;
}

constexpr int kRenderSize = 64;  // glyphs are drawn at this pixel size, then the text is fitted

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(engine_); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(engine_); }  // inclusive
  bool chance(double p) { return uniform(0, 1) < p; }
  double normal(double sigma) { return std::normal_distribution<double>(0, sigma)(engine_); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// What one image gets; strengths drawn per image from its style.
struct Effects {
  double rotation = 2;          // largest per-glyph rotation, degrees
  double size_jitter = 0.03;    // per-glyph relative size change
  double offset_jitter = 0.03;  // per-glyph vertical shift, share of the font size
  double spacing_min = 0.0, spacing_max = 0.12;  // extra advance, share of the font size (< 0 overlaps)
  double squeeze = 1;           // horizontal scale of the text
  bool font_per_glyph = false;
  double bold = 0;              // dilation radius at render size
  double wave = 0;              // amplitude, share of the image height
  double elastic = 0;           // amplitude, share of the image height
  int lines_behind = 0, lines_through = 0, arcs = 0;
  double dots = 0;              // dots per 100 pixels
  double speckle = 0;           // Gaussian noise sigma, grey levels
  double blur = 0;              // Gaussian sigma, pixels
  bool colour = false, gradient = false, per_glyph_colour = false;
  bool hollow = false;
  bool invert = false;
  double rough = 0;             // ragged, fibrous glyph edges: noise amplitude near the ink
  int strokes = 0;              // thick curves drawn with the ink from left of the text to its right
  bool scribble = false;        // a thick zig-zag from the first glyph to the right of the text
  double text_min = 0.5, text_max = 0.85;  // text height, share of the image height
  // Where the bottom edge cuts the text, from the bottom of the glyphs' bodies (0) to below the
  // lowest ink (1): a value below 1 cuts the descenders (g, j, p, q, y), as sites that set the
  // text low do.
  double cut = 1;
  double glyph_luminance_max = 150;         // per-glyph colours: the lightest allowed
  // The broad style's treatments (neutral in the others, which draw the same bytes as before):
  double canvas_scale = 1;   // drawn at this share of the size, then scaled up to it
  double canvas_aspect = 1;  // drawn this much wider (< 1: narrower), then stretched to the size
  double contrast = 1;       // below 1: the whole image pulled towards the paper
  double line_width = 1;     // factor on the lines' thickness
  int jpeg_quality = 0;      // re-encoded as JPEG at this quality (0: not)
  double texture = 0;        // amplitude of a smooth coloured texture on the paper, grey levels
  int stencil = 0;           // horizontal gaps cut through the glyphs
  double small_caps = 0;     // chance that a lower-case letter is drawn as a small capital
  bool edge = false;         // the text set against the left or right edge
};

void distort(Effects& e, Rng& r, double strength) {
  e.rotation = strength * r.uniform(8, 35);
  e.size_jitter = strength * r.uniform(0.05, 0.3);
  e.offset_jitter = strength * r.uniform(0.05, 0.2);
  e.spacing_min = -strength * r.uniform(0.05, 0.25);
  e.spacing_max = r.uniform(0.0, 0.3 + 0.6 * strength);
  e.squeeze = r.uniform(0.6, 1.3);
}

void warp(Effects& e, Rng& r) {
  if (r.chance(0.6))
    e.wave = r.uniform(0.02, 0.08);
  else
    e.elastic = r.uniform(0.02, 0.06);
}

void lines(Effects& e, Rng& r) {
  e.lines_through = r.integer(1, 4);
  e.lines_behind = r.integer(0, 4);
  e.arcs = r.integer(0, 2);
}

void noise(Effects& e, Rng& r) {
  e.dots = r.uniform(0.3, 3);
  e.speckle = r.chance(0.6) ? r.uniform(6, 30) : 0;
}

// Heavy, ragged glyphs on a grey gradient, struck through by thick curves.
void strike(Effects& e, Rng& r) {
  e.bold = std::max(e.bold, r.uniform(0, 2.5));
  e.rough = r.uniform(0.1, 0.4);
  e.strokes = r.integer(1, 2);
  e.gradient = true;
  e.blur = std::max(e.blur, r.uniform(0.3, 1.0));
  e.scribble = r.chance(0.5);
  if (e.scribble) e.strokes -= 1;
}

// Small glyphs far apart, each its own colour, some of them light; thin lines across.
void spaced(Effects& e, Rng& r) {
  e.spacing_min = r.uniform(0.1, 0.4);
  e.spacing_max = e.spacing_min + r.uniform(0.2, 1.2);
  e.text_min = 0.2;
  e.text_max = 0.6;
  e.rotation = std::max(e.rotation, r.uniform(0, 25));
  e.per_glyph_colour = true;
  e.glyph_luminance_max = 200;
  if (r.chance(0.6)) {
    e.lines_through = std::max(e.lines_through, r.integer(1, 3));
    e.lines_behind = std::max(e.lines_behind, r.integer(0, 2));
  }
}

// Every effect with its own chance and strength.
void mix(Effects& e, Rng& r) {
  distort(e, r, r.uniform(0, 1));
  e.font_per_glyph = r.chance(0.25);
  e.bold = r.chance(0.25) ? r.uniform(1, 4) : 0;
  if (r.chance(0.45)) warp(e, r);
  if (r.chance(0.5)) lines(e, r);
  if (r.chance(0.35)) noise(e, r);
  if (r.chance(0.35)) e.blur = r.uniform(0.5, 1.6);
  if (r.chance(0.5)) {
    e.colour = true;
    e.gradient = r.chance(0.5);
    e.per_glyph_colour = r.chance(0.5);
  }
  e.hollow = r.chance(0.08);
  if (e.hollow) e.bold = r.uniform(2, 4);
  e.invert = r.chance(0.1);
  if (r.chance(0.15)) strike(e, r);
  if (r.chance(0.15)) spaced(e, r);
}

// Mix's effects, then every treatment drawn over a wide range: small canvases scaled up, other
// aspect ratios stretched, low contrast, lines of every width, JPEG artefacts, textured paper,
// stencil gaps, small capitals, text against the edges, text of any height.
void broad(Effects& e, Rng& r) {
  mix(e, r);
  distort(e, r, r.uniform(0, 1.3));
  e.text_min = r.uniform(0.3, 0.75);
  e.text_max = std::min(1.0, e.text_min + r.uniform(0.05, 0.4));
  if (r.chance(0.3)) e.canvas_scale = r.uniform(0.35, 0.9);
  if (r.chance(0.4)) e.canvas_aspect = std::exp(r.uniform(-0.6, 0.9));
  if (r.chance(0.25)) e.contrast = r.uniform(0.35, 0.75);
  if (r.chance(0.5)) e.line_width = r.uniform(0.3, 2);
  if (r.chance(0.3)) e.jpeg_quality = r.integer(10, 85);
  if (r.chance(0.3)) e.texture = r.uniform(5, 40);
  if (r.chance(0.08)) e.stencil = r.integer(1, 2);
  if (r.chance(0.05)) e.small_caps = r.uniform(0.3, 1);
  e.edge = r.chance(0.2);
  if (r.chance(0.3)) noise(e, r);
  if (r.chance(0.3)) lines(e, r);
}

Effects pick_effects(const std::string& style, Rng& r) {
  Effects e;
  r.integer(60, 95);  // an unused draw, kept so that every seed still draws the same images
  if (style == "clean") {
    e.squeeze = r.uniform(0.85, 1.15);
  } else if (style == "distort") {
    distort(e, r, 1.0);
    e.font_per_glyph = r.chance(0.4);
  } else if (style == "warp") {
    warp(e, r);
  } else if (style == "lines") {
    lines(e, r);
  } else if (style == "noise") {
    noise(e, r);
  } else if (style == "blur") {
    e.blur = r.uniform(0.7, 1.8);
    e.speckle = r.uniform(0, 8);
  } else if (style == "colour") {
    e.colour = true;
    e.gradient = r.chance(0.5);
    e.per_glyph_colour = r.chance(0.5);
  } else if (style == "hollow") {
    e.hollow = true;
    e.bold = r.uniform(2, 4);
  } else if (style == "inverted") {
    e.invert = true;
  } else if (style == "strike") {
    strike(e, r);
  } else if (style == "spaced") {
    spaced(e, r);
  } else if (style == "cut") {
    // Mix's draws first, so its effects are mix's; struck through more often; text set low.
    mix(e, r);
    if (e.strokes == 0 && !e.scribble && r.chance(0.4)) strike(e, r);
    e.cut = r.uniform(0.1, 0.8);
  } else if (style == "broad") {
    broad(e, r);
  } else {
    mix(e, r);
  }
  return e;
}

cv::Scalar grey(double level) { return cv::Scalar(level, level, level); }

// A colour whose luminance lies in [lo, hi] (0-255).
cv::Scalar colour_with_luminance(Rng& r, double lo, double hi) {
  for (;;) {
    const cv::Scalar c(r.uniform(0, 255), r.uniform(0, 255), r.uniform(0, 255));
    const double luminance = 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2];
    if (luminance >= lo && luminance <= hi) return c;
  }
}

struct Glyph {
  cv::Mat mask;  // CV_8U coverage
  int left = 0, top = 0, advance = 0;
};

// FreeType faces for every font; one per thread at a time (FreeType faces are not thread-safe).
class Renderer {
 public:
  explicit Renderer(const std::vector<std::vector<unsigned char>>& fonts) {
    if (FT_Init_FreeType(&library_)) throw Error("FreeType could not be initialised");
    for (const auto& bytes : fonts) {
      FT_Face face = nullptr;
      if (FT_New_Memory_Face(library_, bytes.data(), static_cast<FT_Long>(bytes.size()), 0, &face)) face = nullptr;
      faces_.push_back(face);
    }
  }
  ~Renderer() {
    for (FT_Face face : faces_)
      if (face) FT_Done_Face(face);
    FT_Done_FreeType(library_);
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  bool covers(std::size_t font, const std::u32string& symbols) const {
    if (!faces_[font]) return false;
    for (char32_t c : symbols)
      if (c != U' ' && FT_Get_Char_Index(faces_[font], c) == 0) return false;
    return true;
  }

  // True when the font draws the lower-case of at least a quarter of these x-height letters
  // (a, c, e, m, ...) as tall as its capital: an all-caps or all-lowercase face, which would draw
  // labels in a case they do not have.
  bool draws_cases_alike(std::size_t font, const std::vector<std::pair<char32_t, char32_t>>& pairs) {
    if (pairs.empty()) return false;
    constexpr int kProbeSize = 48;
    std::size_t alike = 0;
    for (const auto& [lower, upper] : pairs) {
      const Glyph a = glyph(font, lower, kProbeSize), b = glyph(font, upper, kProbeSize);
      if (!a.mask.empty() && !b.mask.empty() && a.mask.rows >= 0.9 * b.mask.rows) ++alike;
    }
    return 4 * alike >= pairs.size();
  }

  Glyph glyph(std::size_t font, char32_t symbol, int pixel_size) {
    FT_Face face = faces_[font];
    Glyph g;
    if (FT_Set_Pixel_Sizes(face, 0, pixel_size) || FT_Load_Char(face, symbol, FT_LOAD_RENDER)) return g;
    const FT_Bitmap& bitmap = face->glyph->bitmap;
    g.left = face->glyph->bitmap_left;
    g.top = face->glyph->bitmap_top;
    g.advance = static_cast<int>(face->glyph->advance.x >> 6);
    if (bitmap.rows > 0 && bitmap.width > 0 && bitmap.pixel_mode == FT_PIXEL_MODE_GRAY)
      g.mask = cv::Mat(bitmap.rows, bitmap.width, CV_8U, bitmap.buffer, bitmap.pitch).clone();
    return g;
  }

 private:
  FT_Library library_ = nullptr;
  std::vector<FT_Face> faces_;
};

// The text as a coverage layer and a colour layer at render size, cropped to the ink.
struct TextLayer {
  cv::Mat alpha;         // CV_32F, 0..1
  cv::Mat colour;        // CV_32FC3
  int body_bottom = 0;   // lowest row any glyph's body (down to its baseline, rotated) reaches
};

void paste(TextLayer& layer, const cv::Mat& mask, int x, int y, const cv::Scalar& colour) {
  const cv::Rect target = cv::Rect(x, y, mask.cols, mask.rows) & cv::Rect(0, 0, layer.alpha.cols, layer.alpha.rows);
  if (target.empty()) return;
  const cv::Mat source = mask(cv::Rect(target.x - x, target.y - y, target.width, target.height));
  for (int row = 0; row < target.height; ++row) {
    const float* s = source.ptr<float>(row);
    float* a = layer.alpha.ptr<float>(target.y + row) + target.x;
    cv::Vec3f* c = layer.colour.ptr<cv::Vec3f>(target.y + row) + target.x;
    for (int col = 0; col < target.width; ++col) {
      const float g = s[col];
      if (g <= 0) continue;
      a[col] = a[col] + g * (1 - a[col]);
      c[col] = c[col] * (1 - g) + cv::Vec3f(colour[0], colour[1], colour[2]) * g;
    }
  }
}

// Smooth random displacement maps for an image of `size` (identity plus the warp).
void displacement_maps(const Effects& e, cv::Size size, Rng& r, cv::Mat& map_x, cv::Mat& map_y) {
  map_x.create(size, CV_32F);
  map_y.create(size, CV_32F);
  cv::Mat dx = cv::Mat::zeros(size, CV_32F), dy = cv::Mat::zeros(size, CV_32F);
  if (e.wave > 0) {
    const double amplitude = e.wave * size.height;
    const double wavelength_x = r.uniform(0.3, 1.0) * size.width, wavelength_y = r.uniform(0.5, 2.0) * size.height;
    const double phase_x = r.uniform(0, 2 * M_PI), phase_y = r.uniform(0, 2 * M_PI);
    const double horizontal_share = r.uniform(0, 0.5);
    for (int y = 0; y < size.height; ++y)
      for (int x = 0; x < size.width; ++x) {
        dy.at<float>(y, x) = static_cast<float>(amplitude * std::sin(2 * M_PI * x / wavelength_x + phase_x));
        dx.at<float>(y, x) =
            static_cast<float>(horizontal_share * amplitude * std::sin(2 * M_PI * y / wavelength_y + phase_y));
      }
  }
  if (e.elastic > 0) {
    cv::Mat ex(size, CV_32F), ey(size, CV_32F);
    cv::randu(ex, -1, 1);
    cv::randu(ey, -1, 1);
    const double sigma = r.uniform(0.08, 0.2) * size.height;
    cv::GaussianBlur(ex, ex, cv::Size(), sigma);
    cv::GaussianBlur(ey, ey, cv::Size(), sigma);
    double peak = 1e-6, v;
    cv::minMaxLoc(cv::abs(ex), nullptr, &v);
    peak = std::max(peak, v);
    cv::minMaxLoc(cv::abs(ey), nullptr, &v);
    peak = std::max(peak, v);
    const double amplitude = e.elastic * size.height / peak;
    dx += ex * amplitude;
    dy += ey * amplitude;
  }
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x) {
      map_x.at<float>(y, x) = x + dx.at<float>(y, x);
      map_y.at<float>(y, x) = y + dy.at<float>(y, x);
    }
}

cv::Point random_point(Rng& r, cv::Rect area) {
  return {r.integer(area.x, area.x + std::max(0, area.width - 1)), r.integer(area.y, area.y + std::max(0, area.height - 1))};
}

// A thickness drawn for a line, times the style's line width factor.
int scaled(int thickness, double factor) { return std::max(1, static_cast<int>(std::lround(thickness * factor))); }

void draw_lines(cv::Mat& image, int count, int arcs, Rng& r, const cv::Rect& text_box, const cv::Scalar& ink,
                bool use_ink, double width_factor) {
  const int thickness_max = std::max(1, image.rows / 25);
  for (int i = 0; i < count + arcs; ++i) {
    const cv::Scalar colour = use_ink && r.chance(0.6) ? ink : colour_with_luminance(r, 0, 200);
    const int thickness = scaled(r.integer(1, thickness_max), width_factor);
    if (i < count) {
      // From left of the text to its right, crossing it.
      const cv::Point a(r.integer(0, std::max(0, text_box.x)), r.integer(0, image.rows - 1));
      const cv::Point b(r.integer(std::min(image.cols - 1, text_box.br().x), image.cols - 1), r.integer(0, image.rows - 1));
      cv::line(image, a, b, colour, thickness, cv::LINE_AA);
    } else {
      const cv::Point centre = random_point(r, text_box);
      const cv::Size axes(r.integer(image.cols / 6, image.cols / 2), r.integer(image.rows / 4, image.rows));
      const double start = r.uniform(0, 360);
      cv::ellipse(image, centre, axes, r.uniform(-30, 30), start, start + r.uniform(60, 200), colour, thickness,
                  cv::LINE_AA);
    }
  }
}

// Thick cubic curves from left of the text to its right, in the ink: they hook, cross glyphs and
// look like parts of them.
void draw_strokes(cv::Mat& image, int count, Rng& r, const cv::Rect& text_box, const cv::Scalar& ink) {
  for (int i = 0; i < count; ++i) {
    const int left = std::min(image.cols - 1, text_box.x + text_box.width / 5);
    const int right = std::max(0, text_box.br().x - text_box.width / 5);
    const cv::Point2d p0(r.integer(0, left), r.integer(0, image.rows - 1));
    const cv::Point2d p3(r.integer(right, image.cols - 1), r.integer(0, image.rows - 1));
    const cv::Point2d p1(r.uniform(p0.x, p3.x), r.uniform(-0.5, 1.5) * image.rows);
    const cv::Point2d p2(r.uniform(p0.x, p3.x), r.uniform(-0.5, 1.5) * image.rows);
    std::vector<cv::Point> curve;
    for (int k = 0; k <= 40; ++k) {
      const double t = k / 40.0, u = 1 - t;
      const cv::Point2d p = u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
      curve.emplace_back(static_cast<int>(std::lround(p.x)), static_cast<int>(std::lround(p.y)));
    }
    const int thickness = r.integer(std::max(1, image.rows / 25), std::max(2, image.rows / 12));
    cv::polylines(image, curve, false, ink, thickness, cv::LINE_AA);
  }
}

// A thick polyline that starts with a few short zig-zags around the first glyph and then runs
// to the right of the text: its start looks like a tick or a small letter (an r, a v, an l).
void draw_scribble(cv::Mat& image, Rng& r, const cv::Rect& text_box, const cv::Scalar& ink) {
  const auto clamp_to_image = [&image](cv::Point2d p) {
    return cv::Point(static_cast<int>(std::lround(std::clamp(p.x, 0.0, image.cols - 1.0))),
                     static_cast<int>(std::lround(std::clamp(p.y, 0.0, image.rows - 1.0))));
  };
  const double reach = image.rows * 0.45;
  cv::Point2d p(r.uniform(text_box.x - reach / 2, text_box.x + text_box.width / 10.0),
                r.uniform(text_box.y, text_box.br().y));
  std::vector<cv::Point> path{clamp_to_image(p)};
  for (int i = r.integer(2, 4); i > 0; --i) {
    const double angle = r.uniform(0, 2 * CV_PI), length = r.uniform(0.25, 1.0) * reach;
    p += cv::Point2d(std::cos(angle) * length, std::sin(angle) * length);
    path.push_back(clamp_to_image(p));
  }
  if (r.chance(0.5))
    path.push_back(clamp_to_image({r.uniform(p.x, text_box.br().x), r.uniform(text_box.y, text_box.br().y)}));
  path.push_back(clamp_to_image({r.uniform(text_box.br().x, image.cols), r.uniform(0, image.rows)}));
  const int thickness = r.integer(std::max(1, image.rows / 25), std::max(2, image.rows / 12));
  cv::polylines(image, path, false, ink, thickness, cv::LINE_AA);
}

bool safe_file_name(const std::u32string& label) {
  if (label.empty() || label[0] == U'.' || label[0] == U'-') return false;
  for (char32_t c : label)
    if (c < 0x20 || c == 0x7f || std::u32string(U"/\\:*?\"<>|").find(c) != std::u32string::npos) return false;
  return true;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& generator_styles() {
  static const std::vector<std::pair<std::string, std::string>> styles = {
      {"clean", "dark text on a light background, one font"},
      {"distort", "per-glyph rotation, size, offset and overlap; fonts may change per glyph"},
      {"warp", "a wave or an elastic warp of the text"},
      {"lines", "straight lines and arcs through and behind the text"},
      {"noise", "dots and speckle"},
      {"blur", "Gaussian blur"},
      {"colour", "colour or gradient backgrounds with coloured glyphs"},
      {"hollow", "outlined glyphs"},
      {"inverted", "light text on a dark background"},
      {"strike", "heavy ragged glyphs on a grey gradient, struck through by thick curves and zig-zags"},
      {"spaced", "small glyphs far apart, each its own colour; thin lines"},
      {"cut", "as mix, struck through more often, the text set so low that the bottom edge cuts its descenders"},
      {"broad", "as mix, then every treatment over a wide range: small canvases scaled up, other aspect ratios, low "
                "contrast, lines of every width, JPEG artefacts, textured paper, stencil gaps, small capitals, text "
                "against the edges"},
      {"mix", "each image draws its own combination of the styles above but cut and broad (the default)"},
  };
  return styles;
}

struct CaptchaGenerator::Impl {
  GenerateOptions options;
  Charset charset;
  std::vector<std::string> font_files;
  std::vector<std::vector<unsigned char>> font_bytes;
  std::mutex pool_mutex;
  std::vector<std::unique_ptr<Renderer>> pool;

  std::unique_ptr<Renderer> acquire() {
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (!pool.empty()) {
        auto renderer = std::move(pool.back());
        pool.pop_back();
        return renderer;
      }
    }
    return std::make_unique<Renderer>(font_bytes);
  }
  void release(std::unique_ptr<Renderer> renderer) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    pool.push_back(std::move(renderer));
  }

  TextLayer render_text(Renderer& renderer, const std::u32string& text, const Effects& e, Rng& r,
                        const cv::Scalar& ink) const;
  cv::Mat draw(Renderer& renderer, const std::u32string& text, std::uint64_t seed) const;
};

TextLayer CaptchaGenerator::Impl::render_text(Renderer& renderer, const std::u32string& text, const Effects& e,
                                              Rng& r, const cv::Scalar& ink) const {
  const int margin = kRenderSize;
  const int baseline = margin + kRenderSize;
  int pen = margin;
  TextLayer layer;
  double body_bottom = 0;
  const int capacity = margin * 2 + static_cast<int>(text.size()) * kRenderSize * 3 / 2;
  layer.alpha = cv::Mat::zeros(2 * margin + kRenderSize * 3 / 2, capacity, CV_32F);
  layer.colour = cv::Mat(layer.alpha.size(), CV_32FC3, cv::Scalar::all(0));
  const std::size_t image_font = static_cast<std::size_t>(r.integer(0, static_cast<int>(font_files.size()) - 1));
  for (char32_t symbol : text) {
    const std::size_t font =
        e.font_per_glyph ? static_cast<std::size_t>(r.integer(0, static_cast<int>(font_files.size()) - 1)) : image_font;
    int size = std::max(8, static_cast<int>(std::lround(kRenderSize * (1 + r.uniform(-1, 1) * e.size_jitter))));
    char32_t drawn = symbol;
    if (e.small_caps > 0 && symbol >= U'a' && symbol <= U'z' && r.chance(e.small_caps)) {
      drawn = symbol - U'a' + U'A';  // a small capital: the capital at about the x-height
      size = std::max(8, size * 7 / 10);
    }
    Glyph g = renderer.glyph(font, drawn, size);
    const cv::Scalar colour = e.per_glyph_colour ? colour_with_luminance(r, 0, e.glyph_luminance_max) : ink;
    if (!g.mask.empty()) {
      cv::Mat mask;
      g.mask.convertTo(mask, CV_32F, 1.0 / 255);
      int x = pen + g.left, y = baseline - g.top + static_cast<int>(r.uniform(-1, 1) * e.offset_jitter * kRenderSize);
      const double angle = r.uniform(-1, 1) * e.rotation;
      const double radians = angle * CV_PI / 180, centre_y = y + mask.rows / 2.0;
      const double body_below_centre = std::min<double>(g.top, mask.rows) - mask.rows / 2.0;
      body_bottom = std::max(body_bottom, centre_y + mask.cols / 2.0 * std::abs(std::sin(radians)) +
                                              body_below_centre * std::cos(radians));
      if (std::abs(angle) > 0.5) {
        const int pad = std::max(mask.rows, mask.cols) / 2 + 2;
        cv::copyMakeBorder(mask, mask, pad, pad, pad, pad, cv::BORDER_CONSTANT, 0);
        const cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(mask.cols / 2.0f, mask.rows / 2.0f), angle, 1.0);
        cv::warpAffine(mask, mask, m, mask.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
        x -= pad;
        y -= pad;
      }
      paste(layer, mask, x, y, colour);
    }
    const double spacing = r.uniform(e.spacing_min, e.spacing_max) * kRenderSize;
    pen += std::max(kRenderSize / 8, static_cast<int>(std::lround(g.advance + spacing)));
  }
  if (e.bold > 0) {
    const int k = 2 * static_cast<int>(std::lround(e.bold)) + 1;
    cv::dilate(layer.alpha, layer.alpha, cv::getStructuringElement(cv::MORPH_ELLIPSE, {k, k}));
    cv::dilate(layer.colour, layer.colour, cv::getStructuringElement(cv::MORPH_ELLIPSE, {k, k}));
  }
  if (e.hollow) {
    cv::Mat inner;
    const int k = 2 * r.integer(2, 3) + 1;  // a ring 2-3 pixels wide at render size
    cv::erode(layer.alpha, inner, cv::getStructuringElement(cv::MORPH_ELLIPSE, {k, k}));
    layer.alpha = cv::max(layer.alpha - inner, 0);
  }
  for (int i = 0; i < e.stencil; ++i) {
    // A stencil's bridge: a thin horizontal gap through every glyph.
    const int gap = r.integer(2, 5), y = baseline - r.integer(kRenderSize / 6, kRenderSize * 2 / 3);
    layer.alpha.rowRange(std::max(0, y), std::min(layer.alpha.rows, y + gap)).setTo(0);
  }
  if (e.rough > 0) {
    // Smooth noise added within a few pixels of the ink: edges fray, strokes thin and thicken.
    cv::Mat near, noise(layer.alpha.size(), CV_32F);
    cv::dilate(layer.alpha, near, cv::getStructuringElement(cv::MORPH_ELLIPSE, {9, 9}));
    cv::randu(noise, -1, 1);
    cv::GaussianBlur(noise, noise, cv::Size(), 1.0);
    layer.alpha = cv::min(cv::max(layer.alpha + noise.mul(near) * (4 * e.rough), 0), 1);
  }
  cv::Mat ink_mask;
  cv::threshold(layer.alpha, ink_mask, 0.02, 255, cv::THRESH_BINARY);
  ink_mask.convertTo(ink_mask, CV_8U);
  const cv::Rect box = cv::boundingRect(ink_mask);
  if (box.empty()) return {};
  layer.alpha = layer.alpha(box).clone();
  layer.colour = layer.colour(box).clone();
  layer.body_bottom = static_cast<int>(std::ceil(body_bottom)) - box.y;
  return layer;
}

cv::Mat CaptchaGenerator::Impl::draw(Renderer& renderer, const std::u32string& text, std::uint64_t seed) const {
  Rng r(seed);
  cv::theRNG().state = seed | 1;  // cv::randu/randn below draw from OpenCV's thread-local RNG
  const Effects e = pick_effects(options.style, r);
  // The canvas: the output size, or (broad) a smaller or other-shaped one, scaled to it at the end.
  const bool rescaled = e.canvas_scale != 1 || e.canvas_aspect != 1;
  const int width = rescaled ? std::max(16, static_cast<int>(std::lround(options.width * e.canvas_aspect * e.canvas_scale)))
                             : options.width;
  const int height = rescaled ? std::max(8, static_cast<int>(std::lround(options.height * e.canvas_scale))) : options.height;

  // Colours: dark ink on a light background (inverted at the end where asked).
  cv::Scalar paper = grey(r.uniform(215, 255)), paper2 = paper;
  cv::Scalar ink = grey(r.uniform(0, 110));
  if (e.gradient && !e.colour) paper2 = grey(r.uniform(150, 255));
  if (e.colour) {
    paper = colour_with_luminance(r, 170, 255);
    paper2 = e.gradient ? colour_with_luminance(r, 170, 255) : paper;
    ink = colour_with_luminance(r, 0, 120);
  }

  TextLayer text_layer = render_text(renderer, text, e, r, ink);
  cv::Mat alpha = cv::Mat::zeros(height, width, CV_32F);
  cv::Mat colour(height, width, CV_32FC3, cv::Scalar::all(0));
  cv::Rect text_box(0, 0, width, height);
  if (!text_layer.alpha.empty()) {
    // Fit: a random share of the height, squeezed to the width where the text is too long.
    const double text_height = r.uniform(e.text_min, e.text_max) * height;
    double sy = text_height / text_layer.alpha.rows;
    double sx = sy * e.squeeze;
    const double max_width = r.uniform(0.8, 0.97) * width;
    if (text_layer.alpha.cols * sx > max_width) sx = max_width / text_layer.alpha.cols;
    const int w = std::max(1, static_cast<int>(std::lround(text_layer.alpha.cols * sx)));
    const int h = std::max(1, static_cast<int>(std::lround(text_layer.alpha.rows * sy)));
    cv::Mat a, c;
    cv::resize(text_layer.alpha, a, {w, h}, 0, 0, cv::INTER_AREA);
    cv::resize(text_layer.colour, c, {w, h}, 0, 0, cv::INTER_AREA);
    text_box = cv::Rect(r.integer(0, width - w), r.integer(0, height - h), w, h);
    if (e.edge) text_box.x = r.chance(0.5) ? 0 : width - w;
    if (e.cut < 1) {
      // The bottom edge between the glyphs' bodies and the lowest ink: only what hangs below is lost.
      const double body = std::clamp(text_layer.body_bottom * sy, 1.0, static_cast<double>(h));
      const int kept = static_cast<int>(std::lround(body + e.cut * (h - body)));
      text_box.y = height - kept;
    }
    const cv::Rect visible = text_box & cv::Rect(0, 0, width, height);
    const cv::Rect source(visible.x - text_box.x, visible.y - text_box.y, visible.width, visible.height);
    a(source).copyTo(alpha(visible));
    c(source).copyTo(colour(visible));
    text_box = visible;
  }
  if (e.wave > 0 || e.elastic > 0) {
    cv::Mat map_x, map_y;
    displacement_maps(e, alpha.size(), r, map_x, map_y);
    cv::remap(alpha, alpha, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
    cv::remap(colour, colour, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  }

  // Background: flat or a horizontal/vertical gradient.
  cv::Mat image(height, width, CV_32FC3, paper);
  if (e.gradient) {
    const bool horizontal = r.chance(0.5);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const double t = horizontal ? x / std::max(1.0, width - 1.0) : y / std::max(1.0, height - 1.0);
        const cv::Scalar p = paper * (1 - t) + paper2 * t;
        image.at<cv::Vec3f>(y, x) = cv::Vec3f(p[0], p[1], p[2]);
      }
  }
  if (e.texture > 0) {
    // Smooth coloured blotches: random values on a coarse grid, interpolated to the canvas.
    cv::Mat field(std::max(2, height / r.integer(3, 10)), std::max(2, width / r.integer(3, 10)), CV_32FC3);
    cv::randu(field, cv::Scalar::all(-e.texture), cv::Scalar::all(e.texture));
    cv::resize(field, field, image.size(), 0, 0, cv::INTER_CUBIC);
    image += field;
  }
  draw_lines(image, e.lines_behind, 0, r, text_box, ink, false, e.line_width);

  // Text over the background.
  for (int y = 0; y < height; ++y) {
    const float* a = alpha.ptr<float>(y);
    const cv::Vec3f* c = colour.ptr<cv::Vec3f>(y);
    cv::Vec3f* out = image.ptr<cv::Vec3f>(y);
    for (int x = 0; x < width; ++x) out[x] = out[x] * (1 - a[x]) + c[x] * a[x];
  }
  draw_lines(image, e.lines_through, e.arcs, r, text_box, ink, true, e.line_width);
  draw_strokes(image, e.strokes, r, text_box, ink);
  if (e.scribble) draw_scribble(image, r, text_box, ink);

  if (e.contrast < 1) image = image * e.contrast + paper * (1 - e.contrast);
  if (e.dots > 0) {
    const int dots = static_cast<int>(e.dots * width * height / 100);
    for (int i = 0; i < dots; ++i)
      cv::circle(image, random_point(r, {0, 0, width, height}), r.integer(0, std::max(1, height / 40)),
                 r.chance(0.5) ? ink : colour_with_luminance(r, 0, 255), cv::FILLED, cv::LINE_AA);
  }
  if (e.speckle > 0) {
    cv::Mat noise(image.size(), CV_32FC3);
    cv::randn(noise, 0, e.speckle);
    image += noise;
  }
  if (e.blur > 0) cv::GaussianBlur(image, image, cv::Size(), e.blur);
  if (e.invert) image = cv::Scalar::all(255) - image;
  cv::Mat out;
  image.convertTo(out, CV_8UC3);
  if (rescaled) {
    const bool grows = options.width * options.height > width * height;
    cv::resize(out, out, {options.width, options.height}, 0, 0, grows ? cv::INTER_LINEAR : cv::INTER_AREA);
  }
  if (e.jpeg_quality > 0) out = to_mat(decode_image_bytes(encode_image(to_image(out), "jpg", e.jpeg_quality), "jpeg"));
  return out;
}

CaptchaGenerator::CaptchaGenerator(const GenerateOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (options.charset.empty()) throw ConfigError("--charset is empty");
  impl_->charset = Charset::from_spec(options.charset);
  const std::string& set = options.font_set;
  if (set != "all" && set != "classic" && set != "extended" && set != "held-out")
    throw ConfigError("unknown font set '" + set + "' (expected all, classic, extended or held-out)");
  std::vector<std::string> dirs = options.font_dirs;
  if (dirs.empty() && set == "held-out") dirs.assign(std::begin(kHeldOutFontDirs), std::end(kHeldOutFontDirs));
  if (dirs.empty()) {
    dirs.assign(std::begin(kClassicFontDirs), std::end(kClassicFontDirs));
    if (set != "classic") dirs.insert(dirs.end(), std::begin(kDisplayFontDirs), std::end(kDisplayFontDirs));
    if (set == "extended") dirs.insert(dirs.end(), std::begin(kExtendedFontDirs), std::end(kExtendedFontDirs));
  }
  std::vector<std::string> candidates;
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string ext = it->path().extension().string();
      if ((ext == ".ttf" || ext == ".otf" || ext == ".TTF" || ext == ".OTF") && !unsuitable_font(it->path().filename()))
        candidates.push_back(it->path().string());
    }
  }
  std::sort(candidates.begin(), candidates.end());
  std::vector<std::vector<unsigned char>> bytes;
  for (const auto& path : candidates) {
    std::ifstream in(path, std::ios::binary);
    bytes.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // The x-height letters whose two cases the charset tells apart.
  const std::u32string& symbols = impl_->charset.symbols();
  std::vector<std::pair<char32_t, char32_t>> case_pairs;
  for (char32_t c : std::u32string(U"acemnorsuvwxz"))
    if (symbols.find(c) != std::u32string::npos && symbols.find(c - U'a' + U'A') != std::u32string::npos)
      case_pairs.emplace_back(c, c - U'a' + U'A');
  Renderer probe(bytes);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!probe.covers(i, symbols) || probe.draws_cases_alike(i, case_pairs)) continue;
    impl_->font_files.push_back(candidates[i]);
    impl_->font_bytes.push_back(std::move(bytes[i]));
  }
  if (impl_->font_files.empty())
    throw ConfigError("no font covers every symbol of the charset " + impl_->charset.symbols_utf8() +
                      " (looked in the Debian font folders scripts/setup.sh installs" +
                      (options.font_dirs.empty() ? "" : " and the given font folders") + ")");
}

CaptchaGenerator::~CaptchaGenerator() = default;

const std::vector<std::string>& CaptchaGenerator::font_files() const { return impl_->font_files; }

std::vector<std::string> CaptchaGenerator::labels(int count) const {
  const auto& o = impl_->options;
  const std::u32string& symbols = impl_->charset.symbols();
  // With label_case "one", a label draws from the charset less the capitals (pools[0]) or less
  // the lower-case letters (pools[1]), of the letters that have both cases in it (as fold_case,
  // which keeps the labels unique, pairs them).
  std::vector<std::u32string> pools{symbols};
  if (o.label_case == "one") {
    pools.assign(2, U"");
    std::map<char32_t, int> cases;
    for (char32_t c : symbols) ++cases[fold_case(c)];
    for (char32_t c : symbols) {
      const char32_t folded = fold_case(c);
      const bool both = cases[folded] > 1, small = folded == c;
      if (!both || small) pools[0] += c;
      if (!both || !small) pools[1] += c;
    }
  }
  Rng r(mix_seed(o.seed, 0xC0FFEE));
  std::set<std::u32string> seen;
  std::vector<std::string> out;
  out.reserve(count);
  for (std::size_t attempts = 0; static_cast<int>(out.size()) < count; ++attempts) {
    if (attempts > 100 * static_cast<std::size_t>(count) + 1000)
      throw ConfigError("cannot draw " + std::to_string(count) + " labels that differ ignoring case from " +
                        std::to_string(symbols.size()) + " symbols at lengths " + std::to_string(o.min_length) +
                        "-" + std::to_string(o.max_length));
    const std::u32string& pool = pools.size() == 1 ? pools[0] : pools[r.integer(0, 1)];
    std::u32string label(r.integer(o.min_length, o.max_length), U' ');
    for (auto& c : label) c = pool[r.integer(0, static_cast<int>(pool.size()) - 1)];
    if (seen.insert(fold_case(label)).second) out.push_back(u32_to_utf8(label));
  }
  return out;
}

cv::Mat CaptchaGenerator::draw(const std::string& label, std::uint64_t image_seed) const {
  auto renderer = impl_->acquire();
  cv::Mat image = impl_->draw(*renderer, utf8_to_u32(label), image_seed);
  impl_->release(std::move(renderer));
  return image;
}

GenerateSummary generate(const GenerateOptions& o, std::ostream& log) {
  const auto start = std::chrono::steady_clock::now();
  if (o.count < 1) throw ConfigError("--count must be at least 1");
  if (o.min_length < 1 || o.max_length < o.min_length)
    throw ConfigError("--length must be N or MIN-MAX with 1 <= MIN <= MAX (got " + std::to_string(o.min_length) +
                      "-" + std::to_string(o.max_length) + ")");
  if (o.height < 16 || o.width < 8 * o.max_length)
    throw ConfigError("--size " + std::to_string(o.width) + "x" + std::to_string(o.height) + " is too small for " +
                      std::to_string(o.max_length) + "-symbol text: at least " + std::to_string(8 * o.max_length) +
                      "x16 (8 pixels per symbol)");
  if (o.width > 4096 || o.height > 1024) throw ConfigError("--size is larger than 4096x1024");
  if (o.format != "png" && o.format != "jpg") throw ConfigError("--format must be png or jpg");
  if (o.label_case != "any" && o.label_case != "one")
    throw ConfigError("--label-case must be any or one (got '" + o.label_case + "')");
  const auto& styles = generator_styles();
  if (std::none_of(styles.begin(), styles.end(), [&](const auto& s) { return s.first == o.style; })) {
    std::string names;
    for (const auto& s : styles) names += (names.empty() ? "" : ", ") + s.first;
    throw ConfigError("unknown style '" + o.style + "' (expected one of " + names + ")");
  }
  if (o.out_dir.empty()) throw ConfigError("an output folder (--out) is needed");
  std::error_code ec;
  if (fs::exists(o.out_dir, ec) && !fs::is_directory(o.out_dir, ec))
    throw ConfigError(o.out_dir + ": exists and is not a folder");
  if (fs::is_directory(o.out_dir, ec) && !fs::is_empty(o.out_dir, ec))
    throw ConfigError(o.out_dir + ": folder is not empty (generate writes into a new or empty folder)");
  const CaptchaGenerator generator(o);
  const std::vector<std::string> labels = generator.labels(o.count);
  fs::create_directories(o.out_dir, ec);
  const fs::path labels_path = fs::path(o.out_dir) / "labels.tsv";
  std::ofstream labels_file(labels_path);
  if (!labels_file) throw ConfigError(o.out_dir + ": cannot write into this folder");
  std::vector<std::string> names(labels.size());
  const int digits = std::max(6, static_cast<int>(std::to_string(o.count).size()));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    std::ostringstream name;
    if (safe_file_name(utf8_to_u32(labels[i])))
      name << labels[i];
    else
      name << std::setw(digits) << std::setfill('0') << i;
    names[i] = name.str() + "." + o.format;
  }

  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  parallel_for(labels.size(), o.threads, [&](std::size_t i) {
    if (failed) return;
    try {
      const cv::Mat image = generator.draw(labels[i], mix_seed(o.seed, i + 1));
      const auto bytes = encode_image(to_image(image), o.format, 60 + static_cast<int>(mix_seed(o.seed, ~i) % 36));
      const fs::path path = fs::path(o.out_dir) / names[i];
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      if (!out.flush()) throw Error(path.string() + ": write failed");
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!failed.exchange(true)) first_error = e.what();
    }
  });
  if (failed) throw Error(first_error);
  for (std::size_t i = 0; i < labels.size(); ++i) labels_file << names[i] << '\t' << labels[i] << '\n';
  if (!labels_file.flush()) throw Error(labels_path.string() + ": write failed");

  GenerateSummary summary;
  summary.count = o.count;
  summary.fonts = static_cast<int>(generator.font_files().size());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "generated " << summary.count << " images (style " << o.style << ", " << summary.fonts << " fonts) in "
      << o.out_dir << " in " << std::fixed << std::setprecision(2) << summary.seconds << " s ("
      << std::setprecision(0) << summary.count / std::max(summary.seconds, 1e-9) << " images/s)\n";
  return summary;
}

}  // namespace captcha
