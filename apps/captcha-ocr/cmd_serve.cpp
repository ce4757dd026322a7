// captcha-ocr serve: reads images sent over HTTP (captcha/server.h; docs/http.md).
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <thread>

#include "captcha/errors.h"
#include "captcha/server.h"
#include "common.h"

namespace captcha::cli {

namespace {

// "NAME=FILE", or FILE alone (named by its stem).
ServedModel parse_model_flag(const std::string& flag) {
  const auto equals = flag.find('=');
  if (equals == std::string::npos) {
    const auto slash = flag.find_last_of('/');
    std::string stem = flag.substr(slash == std::string::npos ? 0 : slash + 1);
    stem = stem.substr(0, stem.find('.'));
    return {stem, flag};
  }
  return {flag.substr(0, equals), flag.substr(equals + 1)};
}

}  // namespace

void register_serve(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("serve", kServeDescription);
  struct Args {
    std::vector<std::string> models;
    std::string api_key_file;
    std::string signing_key_file;
    ServerOptions options;
  };
  auto args = std::make_shared<Args>();
  ServerOptions& o = args->options;
  cmd->add_option("--model", args->models, "NAME=FILE (or FILE, named by its stem); give it again to serve several; the first is the default")
      ->required()->allow_extra_args(false);
  cmd->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o.port, "Port (0: any free port, printed)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", o.threads, "Engine threads and batch workers per model (default: every core)");
  cmd->add_flag("--int8", o.int8, kInt8Help);
  cmd->add_option("--connections", o.connections, "Connections served at once")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-batch", o.max_batch, "Images of concurrent requests read together")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-wait-ms", o.max_wait_ms, "Longest a request waits for others to join its batch")->capture_default_str()->check(kNotNegative);
  cmd->add_option("--max-queue", o.max_queue, "Images waiting per model beyond which requests get 503")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body (413 beyond)")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-images", o.max_images_per_request, "Images in one batch request")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-image-bytes", o.limits.max_file_bytes, "Largest encoded image")->capture_default_str()->check(kPositive);
  cmd->add_option("--max-image-pixels", o.limits.max_pixels, "Most pixels an image's header may state")->capture_default_str()->check(kPositive);
  cmd->add_option("--timeout", o.request_timeout_s, "Seconds a request may wait for its reading (504 beyond)")->capture_default_str()->check(kPositive);
  cmd->add_option("--api-key-file", args->api_key_file, "Require one of these keys (one per line) as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
      ->check(CLI::ExistingFile);
  cmd->add_option("--signing-key-file", args->signing_key_file,
                  "captcha_platform's signed requests (/captcha/auth/v2): 'ACCESS_KEY SECRET_KEY' per line")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--access-log", o.access_log, "One JSON line per request on stderr");
  cmd->callback([&run, args] {
    run = [args] {
      ServerOptions options = args->options;
      for (const std::string& flag : args->models) options.models.push_back(parse_model_flag(flag));
      if (!args->api_key_file.empty()) options.api_keys = read_api_keys(args->api_key_file);
      if (!args->signing_key_file.empty()) options.signing_keys = read_signing_keys(args->signing_key_file);
      // SIGTERM and SIGINT are taken by one thread, which stops the server: requests in flight
      // are answered, new connections refused.
      sigset_t signals;
      sigemptyset(&signals);
      sigaddset(&signals, SIGTERM);
      sigaddset(&signals, SIGINT);
      pthread_sigmask(SIG_BLOCK, &signals, nullptr);
      Server server(options, std::cerr);
      const int port = server.bind();
      std::cerr << "serving " << options.models.size() << (options.models.size() == 1 ? " model" : " models") << " on http://"
                << options.host << ":" << port << "/ (a page to try it; native API /v1/read; ddddocr /ocr/b64/json, /ocr; "
                << "captcha_platform /captcha/v1, /captcha/auth/v2; /metrics)" << std::endl;
      std::thread stopper([&server, signals] {
        int received = 0;
        sigwait(&signals, &received);
        std::cerr << "stopping: answering the requests in flight" << std::endl;
        server.stop();
      });
      server.run();
      pthread_kill(stopper.native_handle(), SIGTERM);  // where run() ended on its own
      stopper.join();
      std::cerr << "stopped" << std::endl;
      return kExitOk;
    };
  });
}

}  // namespace captcha::cli
