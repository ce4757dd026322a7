// `captcha-ocr serve`: the reading library behind HTTP, for clients in any language.
//
//   captcha::ServerOptions options;
//   options.models = {{"general", "models/general.safetensors"}};
//   captcha::Server server(options, std::cerr);
//   server.bind();  // the port, where options.port is 0
//   server.run();   // until stop() (from another thread or a signal-handling thread)
//
// Native API under /v1 (docs/http.md), and the request and answer shapes of the servers whose
// clients should work unchanged: the classic ddddocr API server (/ocr/{b64,file}[/{json,text}],
// /ping), ddddocr 1.6's built-in API (/ocr, /ocr/file, /health) and captcha_platform
// (/captcha/v1, and /captcha/auth/v2 with its signed requests). `GET /` is a page to try it in a
// browser. Images of concurrent requests for a model are read in one batch on the engine.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "captcha/image_io.h"

namespace captcha {

struct ServedModel {
  std::string name;  // as requests name it ("model", "model_name")
  std::string path;
};

// An access key and its secret for captcha_platform's signed requests (/captcha/auth/v2).
struct SigningKey {
  std::string access_key;
  std::string secret_key;
};

struct ServerOptions {
  std::vector<ServedModel> models;  // the first answers requests that name none
  std::string host = "127.0.0.1";
  int port = 8000;                // 0: any free port (Server::bind returns it)
  int threads = 0;                // engine threads and batch workers per model (<= 0: every core)
  bool int8 = false;              // read with int8 products (see Precision)
  int connections = 64;           // connections served at once (one thread each)
  int max_batch = 32;             // images read together on the engine
  double max_wait_ms = 2;         // longest a request waits for others to join its batch
  std::size_t max_queue = 1024;   // images waiting per model, beyond which requests get 503
  std::size_t max_body_bytes = std::size_t{48} << 20;
  std::size_t max_images_per_request = 64;
  ImageLimits limits;             // per image: encoded bytes, pixels stated by the header
  double request_timeout_s = 30;  // a request not read by then gets 504
  std::vector<std::string> api_keys;  // empty: none needed
  std::vector<SigningKey> signing_keys;  // for /captcha/auth/v2 (empty: it refuses every request)
  bool access_log = false;        // one JSON line per request on the log
};

// The keys of `path`, one per line (blank lines and lines starting '#' skipped). Throws Error
// naming the file when it cannot be read or holds no key.
std::vector<std::string> read_api_keys(const std::string& path);

// The access and secret keys of `path`, one pair per line separated by white space (blank lines
// and lines starting '#' skipped). Throws Error naming the file and line.
std::vector<SigningKey> read_signing_keys(const std::string& path);

class Server {
 public:
  // Loads every model. Throws ModelFileError naming the file, ConfigError for bad options.
  Server(const ServerOptions& options, std::ostream& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port; returns the port. Throws Error naming them when it cannot.
  int bind();
  // Serves until stop(): returns once requests in flight are answered.
  void run();
  // Stops accepting connections; requests in flight are still answered. Safe from any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace captcha
