// Drawing for the tools that link OpenCV (see drawing.h).
#include "drawing.h"

#include "captcha/plots.h"

namespace captcha::cli {

void draw_in_full_tool_if_needed() {}

void write_evaluation_grid(const Evaluation& evaluation, const std::string& path, std::size_t count) {
  write_png(path, draw_evaluation_grid(evaluation, count));
}

}  // namespace captcha::cli
