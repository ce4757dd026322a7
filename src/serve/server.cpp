// The HTTP service: routes, authentication, limits, access log and metrics around the batchers.
#include "captcha/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "batcher.h"
#include "captcha/errors.h"
#include "captcha/preprocess.h"
#include "captcha/reader.h"
#include "captcha/recogniser.h"
#include "captcha/utf8.h"
#include "http_input.h"
#include "metrics.h"
#include "serve/page.h"

namespace captcha {

using serve::HttpError;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

struct Model {
  ServedModel file;
  std::string sha256;
  Recogniser recogniser;
  std::unique_ptr<serve::Batcher> batcher;
};

// One image's reading, or why it has none.
struct Outcome {
  Reading reading;
  std::string error;
  int status = 200;
};

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

json reading_json(const Reading& reading) {
  json characters = json::array();
  const std::u32string symbols = utf8_to_u32(reading.text);
  for (std::size_t i = 0; i < symbols.size() && i < reading.char_probabilities.size(); ++i)
    characters.push_back({{"symbol", u32_to_utf8(symbols[i])},
                          {"probability", reading.char_probabilities[i]},
                          {"case_probability", i < reading.case_probabilities.size() ? reading.case_probabilities[i] : 1.0f}});
  return {{"text", reading.text}, {"confidence", reading.confidence}, {"characters", characters}};
}

json parse_json_body(const httplib::Request& request) { return serve::parse_json(request.body, "the body"); }

// The request's one image: multipart field `field`, JSON "image" (base64), or the raw body.
std::vector<std::uint8_t> image_bytes_of(const httplib::Request& request, const json* body, const char* field) {
  if (request.is_multipart_form_data()) {
    if (!request.has_file(field)) throw HttpError(400, std::string("no '") + field + "' field in the form");
    const std::string& content = request.get_file_value(field).content;
    if (content.empty()) throw HttpError(400, std::string("the '") + field + "' field is empty");
    return {content.begin(), content.end()};
  }
  if (body) {
    if (!body->contains("image") || !body->at("image").is_string()) throw HttpError(400, "'image' (base64) is missing");
    return serve::decode_base64(body->at("image").get<std::string>(), "'image'");
  }
  if (request.body.empty()) throw HttpError(400, "the body is empty (send an image, JSON or a form)");
  return {request.body.begin(), request.body.end()};
}

std::string random_uid() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* hex = "0123456789abcdef";
  std::string uid;
  for (int i = 0; i < 32; ++i) uid += hex[rng() & 15];
  return uid;
}

// Keys compared in time that does not depend on where they differ.
bool same_key(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

// Paths open without an API key: the page (it asks for the key), health checks, and
// captcha_platform's signed route (its signature is its key).
const std::set<std::string> kOpenPaths = {"/", "/health", "/ping", "/captcha/auth/v2"};

}  // namespace

namespace {

thread_local Clock::time_point g_request_start;
// The request this connection thread is handling, until its images are queued.
thread_local serve::Arrivals::Ticket* g_ticket = nullptr;
struct CurrentTicket {
  explicit CurrentTicket(serve::Arrivals::Ticket& ticket) { g_ticket = &ticket; }
  ~CurrentTicket() { g_ticket = nullptr; }
  CurrentTicket(const CurrentTicket&) = delete;
  CurrentTicket& operator=(const CurrentTicket&) = delete;
};

void answer_json(httplib::Response& response, const json& body, int status = 200) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Runs `handler`; an HttpError or a library error becomes {"error": message} with its status.
template <typename Handler>
void native(httplib::Response& response, Handler&& handler) {
  try {
    handler();
  } catch (const HttpError& e) {
    if (e.status() == 503) response.set_header("Retry-After", "1");
    answer_json(response, {{"error", e.what()}}, e.status());
  } catch (const ConfigError& e) {
    answer_json(response, {{"error", e.what()}}, 400);
  }
}

}  // namespace

std::vector<std::string> read_api_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the API key file");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty() && line[0] != '#') keys.push_back(line);
  }
  if (keys.empty()) throw Error(path + ": no API key in the file");
  return keys;
}

std::vector<SigningKey> read_signing_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the signing key file");
  std::vector<SigningKey> keys;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    SigningKey key;
    std::string extra;
    if (!(fields >> key.access_key) || key.access_key[0] == '#') continue;
    if (!(fields >> key.secret_key) || fields >> extra)
      throw Error(path + ":" + std::to_string(number) + ": expected ACCESS_KEY SECRET_KEY");
    keys.push_back(key);
  }
  if (keys.empty()) throw Error(path + ": no signing key in the file");
  return keys;
}

struct Server::Impl {
  ServerOptions o;
  std::ostream& log;
  std::mutex log_mutex;
  std::vector<std::unique_ptr<Model>> models;
  serve::Metrics metrics;
  serve::Arrivals arrivals;
  httplib::Server http;
  std::set<std::string> routes;
  int listening_socket = -1;

  Impl(const ServerOptions& options, std::ostream& out) : o(options), log(out) {}

  const Model& model_named(const std::string& name) const {
    if (name.empty()) return *models.front();
    for (const auto& m : models)
      if (m->file.name == name) return *m;
    std::string served;
    for (const auto& m : models) served += (served.empty() ? "" : ", ") + m->file.name;
    throw HttpError(404, "no model named '" + name + "' (served: " + served + ")");
  }

  // Reads `images` in the model's batches; an image that cannot be decoded gets its error.
  std::vector<Outcome> read(const Model& model, std::vector<std::vector<std::uint8_t>> images, const ReadOptions& options) {
    if (images.size() > o.max_images_per_request)
      throw HttpError(413, std::to_string(images.size()) + " images in one request, over the limit of " +
                               std::to_string(o.max_images_per_request));
    std::vector<ImageInput> inputs;
    for (std::size_t i = 0; i < images.size(); ++i)
      inputs.push_back(ImageInput::encoded("image " + std::to_string(i + 1), std::move(images[i])));
    if (g_ticket) g_ticket->leave();
    std::future<std::vector<ReadResult>> pending;
    try {
      pending = model.batcher->submit(std::move(inputs), options);
    } catch (const serve::QueueFull& e) {
      throw HttpError(503, e.what());
    }
    if (pending.wait_for(std::chrono::duration<double>(o.request_timeout_s)) != std::future_status::ready)
      throw HttpError(504, "not read within " + std::to_string(o.request_timeout_s) + " s");
    std::vector<ReadResult> results;
    try {
      results = pending.get();
    } catch (const ConfigError& e) {
      throw HttpError(400, e.what());
    }
    std::vector<Outcome> outcomes(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      outcomes[i].reading = std::move(results[i].reading);
      outcomes[i].error = std::move(results[i].error);
      outcomes[i].status = outcomes[i].error.empty() ? 200 : 400;
    }
    return outcomes;
  }

  // One image, as the native and compatible single-image endpoints read it.
  Reading read_one(const Model& model, std::vector<std::uint8_t> image, const ReadOptions& options) {
    std::vector<std::vector<std::uint8_t>> images;
    images.push_back(std::move(image));
    Outcome outcome = std::move(read(model, std::move(images), options).front());
    if (!outcome.error.empty()) throw HttpError(outcome.status, outcome.error);
    return outcome.reading;
  }

  // POST handlers read the body themselves: httplib would refuse a form-urlencoded body over
  // 8 KiB (curl's default for --data, and what some clients send base64 images as).
  void add_route(const char* method, const std::string& path, httplib::Server::Handler handler) {
    routes.insert(path);
    if (std::string(method) == "GET") {
      http.Get(path, std::move(handler));
      return;
    }
    http.Post(path, [this, handler = std::move(handler)](const httplib::Request& request, httplib::Response& response,
                                                         const httplib::ContentReader& reader) {
      serve::Arrivals::Ticket ticket(arrivals);
      const CurrentTicket current(ticket);
      httplib::Request whole = request;
      std::size_t received = 0;
      const auto within_limit = [&](std::size_t size) { return (received += size) <= o.max_body_bytes; };
      if (request.is_multipart_form_data()) {
        httplib::MultipartFormData part;
        const auto keep = [&] {
          if (!part.name.empty()) whole.files.emplace(part.name, part);
        };
        reader(
            [&](const httplib::MultipartFormData& header) {
              keep();
              part = header;
              return true;
            },
            [&](const char* data, std::size_t size) {
              part.content.append(data, size);
              return within_limit(size);
            });
        keep();
      } else {
        reader([&](const char* data, std::size_t size) {
          whole.body.append(data, size);
          return within_limit(size);
        });
      }
      if (received > o.max_body_bytes || request.get_header_value<std::uint64_t>("Content-Length") > o.max_body_bytes) {
        response.set_header("Connection", "close");
        answer_json(response, {{"error", "the body is over the limit of " + std::to_string(o.max_body_bytes) + " bytes"}}, 413);
        return;
      }
      handler(whole, response);
    });
  }

  void load_models();
  void add_native_routes();
  void add_ddddocr_routes();
  void add_captcha_platform_routes();
  json captcha_platform_read(const json& body);
  json signature_refusal(const json& body) const;
  void add_operations_routes();
  void configure_http();
  void write_access_line(const httplib::Request& request, const httplib::Response& response, double ms);
};


void Server::Impl::load_models() {
  if (o.models.empty()) throw ConfigError("serve: no model given (--model NAME=FILE)");
  if (o.max_batch < 1 || o.max_wait_ms < 0 || o.connections < 1 || o.max_queue < 1 || !(o.request_timeout_s > 0))
    throw ConfigError("serve: --max-batch, --connections and --max-queue must be positive, --max-wait-ms not negative");
  std::set<std::string> names;
  for (const ServedModel& file : o.models) {
    if (file.name.empty() || !names.insert(file.name).second)
      throw ConfigError("serve: model name '" + file.name + "' is empty or given twice");
    auto model = std::make_unique<Model>(Model{file, serve::sha256_of_file(file.path), Recogniser(file.path, o.threads, o.int8 ? Precision::kInt8 : Precision::kFloat32), nullptr});
    serve::BatcherOptions batching;
    batching.max_batch = o.max_batch;
    batching.max_wait = std::chrono::microseconds(static_cast<long>(o.max_wait_ms * 1000));
    batching.max_queue = o.max_queue;
    batching.threads = o.threads;
    batching.limits = o.limits;
    const std::string name = file.name;
    model->batcher = std::make_unique<serve::Batcher>(
        model->recogniser, arrivals, batching, [this, name](std::size_t images) { metrics.count_batch(name, images); });
    // The first reading creates the engine's primitives: done here, not in a client's request.
    model->recogniser.read(Image(model->recogniser.model().preprocess.width,
                                 model->recogniser.model().preprocess.height, 1, 255));
    models.push_back(std::move(model));
  }
}

void Server::Impl::add_native_routes() {
  add_route("POST", "/v1/read", [this](const httplib::Request& request, httplib::Response& response) {
    native(response, [&] {
      const Clock::time_point start = Clock::now();
      const bool is_json = request.get_header_value("Content-Type").rfind("application/json", 0) == 0;
      const json body = is_json ? parse_json_body(request) : json::object();
      if (!body.is_object()) throw HttpError(400, "the body is not a JSON object");
      const auto field = [&](const char* name) {
        if (request.is_multipart_form_data() && request.has_file(name)) return request.get_file_value(name).content;
        return request.get_param_value(name);
      };
      const Model& model = model_named(is_json ? body.value("model", "") : field("model"));
      const ReadOptions options = is_json ? serve::read_options_from_json(body)
                                          : serve::read_options_from_fields(field("allowed"), field("views"), field("beam"),
                                                                            field("any_length"));
      json answer = reading_json(read_one(model, image_bytes_of(request, is_json ? &body : nullptr, "image"), options));
      answer["model"] = model.file.name;
      answer["ms"] = milliseconds_since(start);
      answer_json(response, answer);
    });
  });
  add_route("POST", "/v1/read/batch", [this](const httplib::Request& request, httplib::Response& response) {
    native(response, [&] {
      const Clock::time_point start = Clock::now();
      const json body = parse_json_body(request);
      if (!body.is_object() || !body.contains("images") || !body.at("images").is_array())
        throw HttpError(400, "'images' (a list of base64 images) is missing");
      const Model& model = model_named(body.value("model", ""));
      const ReadOptions options = serve::read_options_from_json(body);
      std::vector<std::vector<std::uint8_t>> images;
      std::vector<std::string> errors;
      for (const json& image : body.at("images")) {
        const std::string what = "image " + std::to_string(images.size() + 1);
        try {
          if (!image.is_string()) throw HttpError(400, what + " is not a base64 string");
          images.push_back(serve::decode_base64(image.get<std::string>(), what));
          errors.emplace_back();
        } catch (const HttpError& e) {
          images.emplace_back();  // read() names it undecodable; its own error is kept below
          errors.emplace_back(e.what());
        }
      }
      const std::vector<Outcome> outcomes = read(model, std::move(images), options);
      json results = json::array();
      for (std::size_t i = 0; i < outcomes.size(); ++i)
        results.push_back(!errors[i].empty()            ? json{{"error", errors[i]}}
                          : !outcomes[i].error.empty() ? json{{"error", outcomes[i].error}}
                                                        : reading_json(outcomes[i].reading));
      answer_json(response, {{"results", results}, {"model", model.file.name}, {"ms", milliseconds_since(start)}});
    });
  });
  add_route("GET", "/v1/models", [this](const httplib::Request&, httplib::Response& response) {
    json list = json::array();
    for (const auto& m : models) {
      const ModelFile& file = m->recogniser.model();
      list.push_back({{"name", m->file.name},
                      {"file", m->file.path},
                      {"sha256", m->sha256},
                      {"charset", file.charset.symbols_utf8()},
                      {"case_insensitive", file.fold_case},
                      {"input_width", file.preprocess.width},
                      {"input_height", file.preprocess.height},
                      {"label_lengths", {file.label_lengths.min, file.label_lengths.max}},
                      {"reading_views", file.reading_views},
                      {"default", m.get() == models.front().get()}});
    }
    answer_json(response, {{"models", list}});
  });
}

// The classic ddddocr API server answers HTTP 200 whatever happens, with the error in "msg"
// (json) or an empty body (text); its b64 body may also be base64 of {"image": base64}.
void Server::Impl::add_ddddocr_routes() {
  for (const std::string kind : {"b64", "file"})
    for (const std::string answer : {"", "/json", "/text"}) {
      const std::string path = "/ocr/" + kind + answer;
      add_route("POST", path, [this, kind, answer](const httplib::Request& request, httplib::Response& response) {
        const bool as_json = answer == "/json";
        // ddddocr 1.6's upload is the form field "file", answered in its own shape.
        if (kind == "file" && answer.empty() && request.is_multipart_form_data() && request.has_file("file") &&
            !request.has_file("image")) {
          const Clock::time_point start = Clock::now();
          try {
            const Reading r = read_one(model_named(request.get_param_value("model")), image_bytes_of(request, nullptr, "file"), {});
            answer_json(response, {{"result", r.text}, {"processing_time", milliseconds_since(start) / 1000}});
          } catch (const HttpError& e) {
            answer_json(response, {{"detail", e.what()}}, e.status());
          }
          return;
        }
        try {
          std::vector<std::uint8_t> image;
          if (kind == "b64") {
            image = serve::decode_base64(request.body, "the body");
            if (!image.empty() && image.front() == '{') {
              const json inner = serve::parse_json(std::string(image.begin(), image.end()), "the decoded body");
              if (inner.is_object() && inner.contains("image") && inner.at("image").is_string())
                image = serve::decode_base64(inner.at("image").get<std::string>(), "'image'");
            }
          } else {
            image = image_bytes_of(request, nullptr, "image");
          }
          const Reading r = read_one(model_named(request.get_param_value("model")), std::move(image), {});
          if (as_json) answer_json(response, {{"status", 200}, {"result", r.text}, {"msg", ""}});
          else response.set_content(r.text, "text/plain; charset=utf-8");
        } catch (const Error& e) {
          if (as_json) answer_json(response, {{"status", 200}, {"result", ""}, {"msg", e.what()}});
          else response.set_content("", "text/plain; charset=utf-8");
        }
      });
    }
  add_route("GET", "/ping", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("pong", "text/plain");
  });
  // ddddocr 1.6: JSON {"image": base64 or data: URI, ...} -> {"result", "processing_time"}.
  add_route("POST", "/ocr", [this](const httplib::Request& request, httplib::Response& response) {
    const Clock::time_point start = Clock::now();
    try {
      const json body = parse_json_body(request);
      if (!body.is_object()) throw HttpError(400, "the body is not a JSON object");
      const Reading r = read_one(model_named(body.value("model", "")), image_bytes_of(request, &body, "image"), {});
      answer_json(response, {{"result", r.text}, {"processing_time", milliseconds_since(start) / 1000}});
    } catch (const HttpError& e) {
      answer_json(response, {{"detail", e.what()}}, e.status());
    }
  });
}

// captcha_platform: {"image": base64 or [base64...], "model_name", "output_split" or
// "split_char"} -> {"uid", "message" (the texts joined by the split string), "code": 0,
// "success": true}; a failure is answered in the same shape with "success": false and "code" the
// HTTP status it stands for. /captcha/auth/v2 also takes "accessKey", "timestamp" (Unix seconds,
// within 120 s of now) and "sign" (captcha_platform_signature) and answers a bad one with that
// project's codes (400001 missing, 400004 timestamp, 400005 access key, 400006 signature).
json Server::Impl::captcha_platform_read(const json& body) {
  if (!body.is_object() || !body.contains("image")) throw HttpError(400, "'image' is missing");
  const Model& model = model_named(body.value("model_name", ""));
  std::string split = ",";
  for (const char* name : {"output_split", "split_char"})
    if (body.contains(name) && body.at(name).is_string()) split = body.at(name).get<std::string>();
  std::vector<std::vector<std::uint8_t>> images;
  const json& image = body.at("image");
  for (const json& item : image.is_array() ? image : json::array({image})) {
    if (!item.is_string()) throw HttpError(400, "'image' holds something other than base64 strings");
    images.push_back(serve::decode_base64(item.get<std::string>(), "'image'"));
  }
  std::string message;
  for (const Outcome& outcome : read(model, std::move(images), {})) {
    if (!outcome.error.empty()) throw HttpError(outcome.status, outcome.error);
    message += (message.empty() ? "" : split) + outcome.reading.text;
  }
  return {{"message", message}, {"code", 0}, {"success", true}};
}

// Why captcha_platform would refuse the signature of `body`, in its shape, or null.
json Server::Impl::signature_refusal(const json& body) const {
  const auto refusal = [](const char* message, int code) {
    return json{{"message", message}, {"code", code}, {"success", false}};
  };
  if (!body.is_object() || !body.contains("sign") || !body.contains("timestamp") || !body.contains("accessKey"))
    return refusal("Invalid Public Params", 400001);
  const json& stamp = body.at("timestamp");
  const std::string stamp_text = stamp.is_string() ? stamp.get<std::string>() : stamp.dump();
  const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  if (stamp_text.size() != 10 || stamp_text.find_first_not_of("0123456789") != std::string::npos ||
      std::llabs(std::stoll(stamp_text) - now) > 120)
    return refusal("Invalid Timestamp", 400004);
  const json& access = body.at("accessKey");
  const SigningKey* key = nullptr;
  for (const SigningKey& k : o.signing_keys)
    if (access.is_string() && access.get<std::string>() == k.access_key) key = &k;
  if (!key) return refusal("Invalid Access Key", 400005);
  const json& sign = body.at("sign");
  if (!sign.is_string() || !same_key(sign.get<std::string>(), serve::captcha_platform_signature(body, key->secret_key)))
    return refusal("Invalid Query String", 400006);
  return nullptr;
}

void Server::Impl::add_captcha_platform_routes() {
  for (const bool signed_route : {false, true})
    add_route("POST", signed_route ? "/captcha/auth/v2" : "/captcha/v1",
              [this, signed_route](const httplib::Request& request, httplib::Response& response) {
      const std::string uid = random_uid();
      try {
        const json body = parse_json_body(request);
        json answer = signed_route ? signature_refusal(body) : json();
        if (answer.is_null()) answer = captcha_platform_read(body);
        answer["uid"] = uid;
        answer_json(response, answer);
      } catch (const HttpError& e) {
        answer_json(response, {{"uid", uid}, {"message", e.what()}, {"code", e.status()}, {"success", false}});
      }
    });
}

void Server::Impl::add_operations_routes() {
  add_route("GET", "/", [](const httplib::Request&, httplib::Response& response) {
    response.set_header("Content-Security-Policy",
                        "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob:");
    response.set_content(serve::kPage, "text/html; charset=utf-8");
  });
  add_route("GET", "/health", [this](const httplib::Request&, httplib::Response& response) {
    json names = json::array();
    for (const auto& m : models) names.push_back(m->file.name);
    answer_json(response, {{"status", "ok"}, {"models", names}});
  });
  add_route("GET", "/metrics", [this](const httplib::Request&, httplib::Response& response) {
    std::map<std::string, std::size_t> queued;
    for (const auto& m : models) queued[m->file.name] = m->batcher->queued_images();
    response.set_content(metrics.exposition(queued, arrivals.count()), "text/plain; version=0.0.4");
  });
}

void Server::Impl::write_access_line(const httplib::Request& request, const httplib::Response& response, double ms) {
  const json line = {{"remote", request.remote_addr},
                     {"method", request.method},
                     {"path", request.path},
                     {"status", response.status},
                     {"ms", ms},
                     {"bytes_in", request.get_header_value<std::uint64_t>("Content-Length")},
                     {"bytes_out", response.body.size()}};
  std::lock_guard<std::mutex> lock(log_mutex);
  log << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
}

void Server::Impl::configure_http() {
  http.new_task_queue = [this] { return new httplib::ThreadPool(static_cast<std::size_t>(o.connections)); };
  http.set_payload_max_length(o.max_body_bytes);
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(static_cast<time_t>(std::max(1.0, o.request_timeout_s)));
  http.set_tcp_nodelay(true);
  // Kept to widen its backlog once bound: the library listens with a backlog of 5, and a burst
  // of new connections beyond that fails.
  http.set_socket_options([this](int socket) {
    const int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listening_socket = socket;
  });
  http.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
    g_request_start = Clock::now();
    if (o.api_keys.empty() || kOpenPaths.count(request.path)) return httplib::Server::HandlerResponse::Unhandled;
    std::string key = request.get_header_value("X-API-Key");
    const std::string authorization = request.get_header_value("Authorization");
    if (key.empty() && authorization.rfind("Bearer ", 0) == 0) key = authorization.substr(7);
    for (const std::string& allowed : o.api_keys)
      if (!key.empty() && same_key(key, allowed)) return httplib::Server::HandlerResponse::Unhandled;
    response.set_header("WWW-Authenticate", "Bearer");
    answer_json(response, {{"error", "missing or wrong API key (Authorization: Bearer KEY or X-API-Key: KEY)"}}, 401);
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    const std::string why = response.status == 404   ? "no such endpoint: " + request.method + " " + request.path
                            : response.status == 413 ? "the body is over the size limit"
                                                     : "bad request";
    answer_json(response, {{"error", why}}, response.status);
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
    std::string why = "internal error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      why += std::string(": ") + e.what();
    } catch (...) {
    }
    answer_json(response, {{"error", why}}, 500);
  });
  http.set_logger([this](const httplib::Request& request, const httplib::Response& response) {
    const double ms = milliseconds_since(g_request_start);
    metrics.count_request(routes.count(request.path) ? request.path : "other", response.status, ms / 1000);
    if (o.access_log) write_access_line(request, response, ms);
  });
}

Server::Server(const ServerOptions& options, std::ostream& log) : impl_(std::make_unique<Impl>(options, log)) {
  impl_->load_models();
  impl_->add_native_routes();
  impl_->add_ddddocr_routes();
  impl_->add_captcha_platform_routes();
  impl_->add_operations_routes();
  impl_->configure_http();
}

Server::~Server() { stop(); }

int Server::bind() {
  Impl& s = *impl_;
  const int port = s.o.port == 0 ? s.http.bind_to_any_port(s.o.host) : (s.http.bind_to_port(s.o.host, s.o.port) ? s.o.port : -1);
  if (port < 0) throw Error(s.o.host + ":" + std::to_string(s.o.port) + ": cannot listen there (in use, or no such address)");
  if (s.listening_socket >= 0) ::listen(s.listening_socket, SOMAXCONN);
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

}  // namespace captcha
