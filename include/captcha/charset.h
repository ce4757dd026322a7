// The symbols a model can read. Class 0 is the CTC blank; symbol i is class i + 1.
#pragma once

#include <string>
#include <vector>

namespace captcha {

class Charset {
 public:
  static constexpr int kBlank = 0;

  Charset() = default;
  // `symbols` is a UTF-8 string of distinct code points. Throws ConfigError when it is empty,
  // has a repeated symbol, or holds a control character.
  explicit Charset(const std::string& symbols);

  // The sorted, distinct code points of `labels`. Throws ConfigError when there are none.
  static Charset from_labels(const std::vector<std::string>& labels);
  // A preset (`digits`, `lower`, `upper`, `alnum`, `alnum-lower`) or a literal symbol string.
  static Charset from_spec(const std::string& spec);

  const std::u32string& symbols() const { return symbols_; }
  std::string symbols_utf8() const;
  int size() const { return static_cast<int>(symbols_.size()); }
  // Symbols plus the blank: the width of the network's output layer.
  int num_classes() const { return size() + 1; }

  // Class index of a code point, or -1 where it is not in the charset.
  int class_of(char32_t symbol) const;
  char32_t symbol_of(int class_index) const;  // 1..size()
  bool can_encode(const std::u32string& text) const;
  // Class indices of `text`. Throws ConfigError naming the first unknown symbol.
  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& class_indices) const;  // skips blanks

 private:
  std::u32string symbols_;
};

}  // namespace captcha
