// Charset: presets, derivation, encode/decode round trip, errors.
#include "captcha/charset.h"

#include <gtest/gtest.h>

#include "captcha/errors.h"
#include "captcha/utf8.h"

namespace captcha {
namespace {

TEST(Charset, RoundTripsEveryLabel) {
  const Charset charset = Charset::from_spec("alnum");
  for (const std::string label : {"abc12", "Z9y8X", "0", "aAaA"}) {
    const auto encoded = charset.encode(label);
    EXPECT_EQ(encoded.size(), label.size());
    for (int c : encoded) EXPECT_GT(c, Charset::kBlank);
    EXPECT_EQ(charset.decode(encoded), label);
  }
}

TEST(Charset, BlankIsClassZeroAndSymbolsStartAtOne) {
  const Charset charset("xyz");
  EXPECT_EQ(charset.num_classes(), 4);
  EXPECT_EQ(charset.class_of(U'x'), 1);
  EXPECT_EQ(charset.class_of(U'z'), 3);
  EXPECT_EQ(charset.class_of(U'a'), -1);
  EXPECT_EQ(charset.decode({0, 1, 0, 3, 0}), "xz");
}

TEST(Charset, FromLabelsIsSortedAndDistinct) {
  EXPECT_EQ(Charset::from_labels({"ba3", "c3a"}).symbols_utf8(), "3abc");
}

TEST(Charset, Presets) {
  EXPECT_EQ(Charset::from_spec("digits").size(), 10);
  EXPECT_EQ(Charset::from_spec("lower").size(), 26);
  EXPECT_EQ(Charset::from_spec("upper").symbols_utf8().substr(0, 3), "ABC");
  EXPECT_EQ(Charset::from_spec("alnum").size(), 62);
  EXPECT_EQ(Charset::from_spec("alnum-lower").size(), 36);
  EXPECT_EQ(Charset::from_spec("2345").size(), 4);  // a literal
}

TEST(Charset, HandlesNonAsciiSymbols) {
  const Charset charset("aéß");
  EXPECT_EQ(charset.size(), 3);
  EXPECT_EQ(charset.decode(charset.encode("ßéa")), "ßéa");
}

TEST(Charset, RejectsBadInput) {
  EXPECT_THROW(Charset(""), ConfigError);
  EXPECT_THROW(Charset("abca"), ConfigError);
  EXPECT_THROW(Charset("ab\n"), ConfigError);
  EXPECT_THROW(Charset::from_labels({"", ""}), ConfigError);
  EXPECT_THROW(Charset("abc").encode("abd"), ConfigError);
}

TEST(Utf8, RejectsMalformedAndTruncated) {
  EXPECT_THROW(utf8_to_u32("\xC3"), ConfigError);
  EXPECT_THROW(utf8_to_u32("\xC3\x28"), ConfigError);
  EXPECT_THROW(utf8_to_u32("\xFF"), ConfigError);
  EXPECT_EQ(u32_to_utf8(utf8_to_u32("h€llo😀")), "h€llo😀");
  EXPECT_TRUE(is_valid_utf8("h€llo"));
  EXPECT_FALSE(is_valid_utf8("ab\xff"));
}

TEST(Utf8, RejectsOverlongFormsSurrogatesAndCodePointsPastTheLast) {
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // '/' in two bytes
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // '/' in three
  EXPECT_FALSE(is_valid_utf8("\xF0\x80\x80\xAF"));  // '/' in four
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // U+D800, a surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_TRUE(is_valid_utf8("\xC2\x80\xE0\xA0\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"));  // the smallest of each, U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF\xEE\x80\x80"));  // either side of the surrogates
}

}  // namespace
}  // namespace captcha
