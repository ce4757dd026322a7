// What the command-line tools draw, where the tool links the drawing libraries (OpenCV,
// FreeType): drawing.cpp draws; the reading tool's forward.cpp runs a tool that does.
#pragma once

#include <cstddef>
#include <string>

#include "captcha/reader.h"

namespace captcha::cli {

// Returns where this tool draws; elsewhere runs the full tool in its place with the same
// arguments (returns only by throwing Error). Called before any work by a command about to draw.
void draw_in_full_tool_if_needed();

// Writes up to `count` images of the evaluation with their readings as a PNG grid (see
// draw_evaluation_grid). Throws Error naming `path`.
void write_evaluation_grid(const Evaluation& evaluation, const std::string& path, std::size_t count);

}  // namespace captcha::cli
