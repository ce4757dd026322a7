// The reading tool's `serve`: runs captcha-ocr-serve, installed beside it, in its place (same
// process, so signals reach the service). The HTTP library and the OpenSSL it links would
// otherwise cost every start of the reading tool about 10 ms of loading that only the service
// needs (docs/BENCHMARKS.md, "Start-up").
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "captcha/errors.h"
#include "common.h"

namespace captcha::cli {

namespace {

// `name` in the folder of the running executable.
std::string beside_this_executable(const std::string& name) {
  std::string self(4096, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (length <= 0) throw Error("cannot find this executable's folder (/proc/self/exe: " + std::string(std::strerror(errno)) + ")");
  self.resize(static_cast<std::size_t>(length));
  return self.substr(0, self.find_last_of('/') + 1) + name;
}

}  // namespace

void register_serve(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("serve", kServeDescription);
  cmd->set_help_flag();  // `serve --help` is the service's own
  cmd->allow_extras();
  cmd->prefix_command();
  cmd->callback([&run, cmd] {
    const std::vector<std::string> flags = cmd->remaining();
    run = [flags] {
      const std::string server = beside_this_executable("captcha-ocr-serve");
      std::vector<std::string> args{server, "serve"};
      args.insert(args.end(), flags.begin(), flags.end());
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(server.c_str(), argv.data());
      throw Error("cannot run " + server + " (installed with this tool; it serves HTTP): " + std::strerror(errno));
      return kExitFailure;
    };
  });
}

}  // namespace captcha::cli
