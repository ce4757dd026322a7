// The reading tool's commands that need libraries it does not link: `serve` (the HTTP library
// and OpenSSL), `generate` and `eval --grid` (OpenCV and FreeType, which draw). Each runs
// captcha-ocr-serve, installed beside it and built with all of them, in its place: the same
// process, so signals reach the service. Linked, those libraries would cost every start of the
// reading tool some 20 ms of loading that only these commands need (docs/BENCHMARKS.md,
// "Start-up").
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "captcha/errors.h"
#include "common.h"
#include "drawing.h"

namespace captcha::cli {

namespace {

constexpr const char* kFullTool = "captcha-ocr-serve";

// `name` in the folder of the running executable.
std::string beside_this_executable(const std::string& name) {
  std::string self(4096, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (length <= 0) throw Error("cannot find this executable's folder (/proc/self/exe: " + std::string(std::strerror(errno)) + ")");
  self.resize(static_cast<std::size_t>(length));
  return self.substr(0, self.find_last_of('/') + 1) + name;
}

// Runs the full tool in this process's place with `args` (after its own name); returns only by
// throwing.
[[noreturn]] void run_full_tool(std::vector<std::string> args, const std::string& why) {
  const std::string tool = beside_this_executable(kFullTool);
  args.insert(args.begin(), tool);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execv(tool.c_str(), argv.data());
  throw Error("cannot run " + tool + " (installed with this tool; it " + why + "): " + std::strerror(errno));
}

// A subcommand whose arguments, whatever they are, go to the full tool's subcommand of that name.
void register_forwarded(CLI::App& app, Action& run, const std::string& name, const std::string& description,
                        const std::string& why) {
  auto* cmd = app.add_subcommand(name, description);
  cmd->set_help_flag();  // `NAME --help` is the full tool's own
  cmd->allow_extras();
  cmd->prefix_command();
  cmd->callback([&run, cmd, name, why] {
    std::vector<std::string> args{name};
    for (const std::string& flag : cmd->remaining()) args.push_back(flag);
    run = [args, why]() -> int { run_full_tool(args, why); };
  });
}

}  // namespace

void register_serve(CLI::App& app, Action& run) { register_forwarded(app, run, "serve", kServeDescription, "serves HTTP"); }

void register_generate(CLI::App& app, Action& run) {
  register_forwarded(app, run, "generate", kGenerateDescription, "draws the images");
}

void draw_in_full_tool_if_needed() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t start = 0; start < line.size();) {
    const std::size_t end = line.find('\0', start);
    args.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    start = end == std::string::npos ? line.size() : end + 1;
  }
  if (args.empty()) throw Error("cannot read this process's arguments (/proc/self/cmdline)");
  args.erase(args.begin());
  run_full_tool(args, "draws the images");
}

void write_evaluation_grid(const Evaluation&, const std::string& path, std::size_t) {
  throw Error(path + ": this tool does not draw grids (draw_in_full_tool_if_needed runs one that does)");
}

}  // namespace captcha::cli
