// captcha-ocr serve: the native API, the endpoints ddddocr's and captcha_platform's clients call
// (the requests they send, the shapes they read), authentication, limits, batching, metrics
// and a graceful stop. A real server on a free loopback port, the bundled model.
#include "captcha/server.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "captcha/image_io.h"
#include "captcha/recogniser.h"
#include "serve/http_input.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

using nlohmann::json;

const std::string kModel = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], table[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += {table[v >> 18], table[v >> 12 & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], '='};
  }
  return out;
}

std::string md5_upper(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_md5(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < size; ++i) out += {"0123456789ABCDEF"[digest[i] >> 4], "0123456789ABCDEF"[digest[i] & 15]};
  return out;
}

std::string png_of(const std::string& text, std::uint64_t seed = 1) {
  const auto bytes = encode_image(testing::draw_text(text, 200, 50, seed), "png");
  return std::string(bytes.begin(), bytes.end());
}

// A server on a free port, run by a thread; stopped and joined when the test ends.
class Served {
 public:
  explicit Served(ServerOptions options = {}) {
    if (options.models.empty()) options.models = {{"general", kModel}};
    options.port = 0;
    if (options.threads == 0) options.threads = 1;
    server_ = std::make_unique<Server>(options, log_);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~Served() {
    server_->stop();
    thread_.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30);
    return c;
  }
  Server& server() { return *server_; }
  int port() const { return port_; }
  std::string log() const { return log_.str(); }

 private:
  std::ostringstream log_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
};

// Polls /metrics until it holds `line` (up to 10 s); returns the last exposition read.
std::string metrics_once_they_hold(const Served& served, const std::string& line) {
  std::string metrics;
  for (int i = 0; i < 500 && metrics.find(line) == std::string::npos; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = served.client().Get("/metrics")->body;
  }
  return metrics;
}

// A request whose body is still on its way: headers and half the body sent, the rest never.
// While it lasts, a batch waits (up to max-wait) for it to join. Constructed once the server
// counts it as being received.
class HalfSentRequest {
 public:
  explicit HalfSentRequest(const Served& served) {
    socket_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(served.port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(socket_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    const std::string start = "POST /v1/read HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n" +
                              std::string(500, 'x');
    EXPECT_EQ(::send(socket_, start.data(), start.size(), 0), static_cast<ssize_t>(start.size()));
    const std::string metrics = metrics_once_they_hold(served, "captcha_receiving_requests 1\n");
    EXPECT_NE(metrics.find("captcha_receiving_requests 1\n"), std::string::npos) << metrics;
  }
  ~HalfSentRequest() { ::close(socket_); }
  HalfSentRequest(const HalfSentRequest&) = delete;
  HalfSentRequest& operator=(const HalfSentRequest&) = delete;

 private:
  int socket_ = -1;
};

std::string expected_reading(const std::string& png) {
  static const Recogniser recogniser(kModel, 1);
  const std::vector<std::uint8_t> bytes(png.begin(), png.end());
  return recogniser.read(decode_image(bytes, "expected")).text;
}

json body_json(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no answer";
  return r ? json::parse(r->body) : json();
}

TEST(Serve, NativeReadTakesJsonARawBodyOrAForm) {
  Served served;
  auto client = served.client();
  const std::string png = png_of("k7mq2");
  const std::string expected = expected_reading(png);

  auto r = client.Post("/v1/read", json{{"image", base64(png)}}.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  json answer = body_json(r);
  EXPECT_EQ(answer.at("text"), expected);
  EXPECT_EQ(answer.at("model"), "general");
  EXPECT_GT(answer.at("confidence").get<double>(), 0.0);
  EXPECT_GE(answer.at("ms").get<double>(), 0.0);
  EXPECT_EQ(answer.at("characters").size(), expected.size());
  for (const auto& c : answer.at("characters")) {
    EXPECT_LE(c.at("probability").get<double>(), 1.0);
    const double case_probability = c.at("case_probability").get<double>();
    EXPECT_TRUE(case_probability > 0 && case_probability <= 1.0) << c.dump();
    if (std::isdigit(static_cast<unsigned char>(c.at("symbol").get<std::string>()[0]))) EXPECT_EQ(case_probability, 1.0);
  }

  r = client.Post("/v1/read?beam=0&allowed=k7mq2", png, "image/png");
  ASSERT_EQ(r->status, 200) << r->body;
  for (char c : body_json(r).at("text").get<std::string>()) EXPECT_NE(std::string("k7mq2").find(c), std::string::npos);

  // A base64 body sent as curl sends --data (form-urlencoded) is not refused at 8 KiB.
  const std::string data_uri = "data:image/png;base64," + base64(png) + std::string(9000, '\n');
  r = client.Post("/v1/read", json{{"image", data_uri}}.dump(), "application/x-www-form-urlencoded");
  EXPECT_EQ(r->status, 400) << r->body;  // not JSON content: the body is taken as an image
  r = client.Post("/v1/read", json{{"image", data_uri}}.dump(), "application/json");
  EXPECT_EQ(body_json(r).value("text", ""), expected) << r->body;

  httplib::MultipartFormDataItems form = {{"image", png, "a.png", "image/png"}, {"beam", "0", "", ""}};
  r = client.Post("/v1/read", form);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_json(r).at("text"), expected);
}

TEST(Serve, BatchRequestsAnswerEachImage) {
  Served served;
  const std::string a = png_of("ab12"), b = png_of("xy9z", 2);
  auto r = served.client().Post("/v1/read/batch", json{{"images", {base64(a), "!!not base64", base64("GIF89a"), base64(b)}}}.dump(),
                                "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const json results = body_json(r).at("results");
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].at("text"), expected_reading(a));
  EXPECT_NE(results[1].at("error").get<std::string>().find("image 2 is not valid base64"), std::string::npos);
  EXPECT_NE(results[2].at("error").get<std::string>().find("image 3"), std::string::npos);
  EXPECT_EQ(results[3].at("text"), expected_reading(b));
}

// What the classic ddddocr API server's clients send: the base64 body raw (or base64 of
// {"image": base64}), or a form with "image"; they read {"status", "result", "msg"} or the text.
TEST(Serve, ClassicDdddocrClientsWorkUnchanged) {
  Served served;
  auto client = served.client();
  const std::string png = png_of("p4wd");
  const std::string expected = expected_reading(png);
  auto r = client.Post("/ocr/b64/json", base64(png), "application/x-www-form-urlencoded");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r), (json{{"status", 200}, {"result", expected}, {"msg", ""}}));
  r = client.Post("/ocr/b64/text", base64(json{{"image", base64(png)}}.dump()), "text/plain");
  EXPECT_EQ(r->body, expected);
  r = client.Post("/ocr/file/json", httplib::MultipartFormDataItems{{"image", png, "c.png", "image/png"}});
  EXPECT_EQ(body_json(r).at("result"), expected);
  r = client.Post("/ocr/file/text", httplib::MultipartFormDataItems{{"image", png, "c.png", "image/png"}});
  EXPECT_EQ(r->body, expected);
  r = client.Post("/ocr/file", httplib::MultipartFormDataItems{{"image", png, "c.png", "image/png"}});
  EXPECT_EQ(r->body, expected);  // text by default, as the peer answers
  // Failures: HTTP 200 with the reason in "msg" (json) or an empty body (text), as the peer.
  r = client.Post("/ocr/b64/json", "not base64 at all!", "text/plain");
  ASSERT_EQ(r->status, 200);
  json failed = body_json(r);
  EXPECT_EQ(failed.at("result"), "");
  EXPECT_FALSE(failed.at("msg").get<std::string>().empty());
  EXPECT_EQ(client.Post("/ocr/b64/text", base64("not an image"), "text/plain")->body, "");
  EXPECT_EQ(client.Get("/ping")->body, "pong");
}

// ddddocr 1.6's built-in API: JSON {"image": base64 or data: URI} -> {"result", "processing_time"}.
TEST(Serve, Ddddocr16ClientsWorkUnchanged) {
  Served served;
  auto client = served.client();
  const std::string png = png_of("m3n8q");
  auto r = client.Post("/ocr", json{{"image", "data:image/png;base64," + base64(png)}, {"probability", false}, {"png_fix", false}}.dump(),
                       "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  json answer = body_json(r);
  EXPECT_EQ(answer.at("result"), expected_reading(png));
  EXPECT_GE(answer.at("processing_time").get<double>(), 0.0);
  EXPECT_LT(answer.at("processing_time").get<double>(), 10.0);  // seconds, not milliseconds
  r = client.Post("/ocr/file", httplib::MultipartFormDataItems{{"file", png, "c.png", "image/png"}});
  EXPECT_EQ(body_json(r).at("result"), expected_reading(png));
  r = client.Post("/ocr", json{{"image", base64("not an image")}}.dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(body_json(r).contains("detail"));
  EXPECT_EQ(body_json(client.Get("/health")).at("status"), "ok");
}

// captcha_platform: {"image": base64 or a list, "model_name", "output_split"} ->
// {"uid", "message", "code", "success"}.
TEST(Serve, CaptchaPlatformClientsWorkUnchanged) {
  Served served({{{"first", kModel}, {"second", kModel}}});
  auto client = served.client();
  const std::string a = png_of("qq47"), b = png_of("zt5", 3);
  auto r = client.Post("/captcha/v1", json{{"image", base64(a)}, {"model_name", "second"}}.dump(), "application/json");
  json answer = body_json(r);
  EXPECT_EQ(answer.at("message"), expected_reading(a));
  EXPECT_EQ(answer.at("code"), 0);
  EXPECT_EQ(answer.at("success"), true);
  EXPECT_EQ(answer.at("uid").get<std::string>().size(), 32u);
  r = client.Post("/captcha/v1", json{{"image", {base64(a), base64(b)}}, {"output_split", "|"}}.dump(), "application/json");
  EXPECT_EQ(body_json(r).at("message"), expected_reading(a) + "|" + expected_reading(b));
  r = client.Post("/captcha/v1", json{{"image", base64(a)}, {"model_name", "third"}}.dump(), "application/json");
  answer = body_json(r);
  EXPECT_EQ(answer.at("success"), false);
  EXPECT_EQ(answer.at("code"), 404);
  EXPECT_NE(answer.at("message").get<std::string>().find("no model named 'third' (served: first, second)"), std::string::npos);
}

TEST(Serve, ModelsHealthAndMetricsDescribeTheService) {
  Served served;
  auto client = served.client();
  const json models = body_json(client.Get("/v1/models")).at("models");
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].at("name"), "general");
  EXPECT_EQ(models[0].at("sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(models[0].at("input_width"), 200);
  client.Post("/v1/read", png_of("ab12"), "image/png");
  client.Post("/v1/read", "garbage", "image/png");
  // A request is counted once its answer is sent: wait until both are.
  std::string metrics;
  for (int i = 0; i < 100 && metrics.find("code=\"400\"} 1") == std::string::npos; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = client.Get("/metrics")->body;
  }
  EXPECT_NE(metrics.find("captcha_requests_total{endpoint=\"/v1/read\",code=\"200\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("captcha_requests_total{endpoint=\"/v1/read\",code=\"400\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("captcha_batch_images_count{model=\"general\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("captcha_images_total{model=\"general\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("captcha_queued_images{model=\"general\"} 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("captcha_request_seconds_count"), std::string::npos) << metrics;
}

TEST(Serve, ApiKeysAreRequiredWhereGiven) {
  ServerOptions options;
  options.api_keys = {"s3cret", "other-key"};
  options.access_log = true;
  Served served(options);
  auto client = served.client();
  const std::string png = png_of("ab12");
  auto r = client.Post("/v1/read", png, "image/png");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(client.Post("/v1/read", {{"Authorization", "Bearer wrong"}}, png, "image/png")->status, 401);
  EXPECT_EQ(client.Post("/v1/read", {{"Authorization", "Bearer s3cret"}}, png, "image/png")->status, 200);
  EXPECT_EQ(client.Post("/ocr/b64/text", {{"X-API-Key", "other-key"}}, base64(png), "text/plain")->status, 200);
  EXPECT_EQ(client.Get("/health")->status, 200);  // health checks need no key
  EXPECT_NE(served.log().find("\"status\":401"), std::string::npos) << served.log();
  EXPECT_NE(served.log().find("\"path\":\"/v1/read\""), std::string::npos);
}

TEST(Serve, HostileRequestsGetAClearFourHundred) {
  ServerOptions options;
  options.max_body_bytes = 1 << 20;
  options.max_images_per_request = 3;
  Served served(options);
  auto client = served.client();
  const auto error_of = [](const httplib::Result& r) { return json::parse(r->body).at("error").get<std::string>(); };
  auto r = client.Post("/v1/read", std::string(2 << 20, 'x'), "image/png");
  EXPECT_EQ(r->status, 413);
  // 54 bytes whose header claims 26000 x 26000 pixels.
  std::string bomb = "BM";
  const auto le = [&bomb](std::uint32_t value, int count) {
    for (int i = 0; i < count; ++i) bomb += static_cast<char>(value >> (8 * i));
  };
  le(54, 4), le(0, 4), le(54, 4), le(40, 4), le(26000, 4), le(26000, 4), le(1, 2), le(24, 2);
  le(0, 4), le(0, 4), le(2835, 4), le(2835, 4), le(0, 4), le(0, 4);
  r = client.Post("/v1/read", bomb, "image/bmp");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(r).find("26000x26000 pixels, over the limit"), std::string::npos) << r->body;
  r = client.Post("/v1/read/batch", json{{"images", {"a", "b", "c", "d"}}}.dump(), "application/json");
  EXPECT_EQ(r->status, 413) << r->body;
  r = client.Post("/v1/read", "{\"image\": ", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_of(r), "the body is not valid JSON");
  // JSON nested a million deep is refused as it is parsed, not built in memory first.
  r = client.Post("/v1/read", std::string(1000000, '['), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_of(r), "the body nests JSON deeper than 32 levels");
  r = client.Post("/captcha/auth/v2", "{\"image\": " + std::string(100000, '[') + std::string(100000, ']') + "}",
                  "application/json");
  EXPECT_NE(body_json(r).at("message").get<std::string>().find("deeper than 32 levels"), std::string::npos) << r->body;
  r = client.Post("/v1/read", json{{"image", base64(png_of("ab"))}, {"views", 99}}.dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  r = client.Post("/v1/read", "{\"image\": \"AAAA\", \"beam\": 3e37}", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(error_of(r).find("'beam' must be a whole number"), std::string::npos) << r->body;
  EXPECT_EQ(client.Post("/v1/read", "[1, 2]", "application/json")->status, 400);
  r = client.Post("/v1/read", json{{"image", base64(png_of("ab"))}, {"model", "nope"}}.dump(), "application/json");
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(client.Get("/no/such/endpoint")->status, 404);
  EXPECT_EQ(client.Post("/v1/read", "", "image/png")->status, 400);
  // Good requests are unaffected.
  EXPECT_EQ(client.Post("/v1/read", png_of("ab12"), "image/png")->status, 200);
}

// Concurrent requests are read together: fewer batches than requests, every answer right.
// With three engine threads there are three batch workers taking batches from one queue.
TEST(Serve, ConcurrentRequestsAreReadInBatches) {
  for (const int threads : {1, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    ServerOptions options;
    options.max_wait_ms = 200;
    options.max_batch = 8;
    options.threads = threads;
    options.access_log = true;
    Served served(options);
    constexpr int kRequests = 16;
    std::vector<std::string> images;
    for (int i = 0; i < kRequests; ++i) images.push_back(png_of("w" + std::to_string(1000 + i), i));
    std::vector<std::future<std::string>> answers;
    for (int i = 0; i < kRequests; ++i)
      answers.push_back(std::async(std::launch::async, [&, i] {
        auto r = served.client().Post("/v1/read", images[i], "image/png");
        return r && r->status == 200 ? json::parse(r->body).at("text").get<std::string>()
                                     : "failed: " + (r ? r->body : httplib::to_string(r.error()));
      }));
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(answers[i].get(), expected_reading(images[i])) << i << "\n" << served.log();
    const std::string metrics = served.client().Get("/metrics")->body;
    std::smatch count;
    ASSERT_TRUE(std::regex_search(metrics, count, std::regex("captcha_batch_images_count\\{model=\"general\"\\} (\\d+)")));
    EXPECT_LT(std::stoi(count[1]), kRequests) << metrics;
    EXPECT_GE(std::stoi(count[1]), kRequests / 8);
    EXPECT_NE(metrics.find("captcha_images_total{model=\"general\"} 16"), std::string::npos) << metrics;
  }
}

// A lone request is read at once, not after max-wait: nothing else is on its way to join it.
TEST(Serve, ALoneRequestIsNotKeptWaiting) {
  ServerOptions options;
  options.max_wait_ms = 60000;
  options.request_timeout_s = 120;
  Served served(options);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(served.client().Post("/v1/read", png_of("ab12"), "image/png")->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(Serve, AFullQueueAnswersRetryLater) {
  ServerOptions options;
  options.max_queue = 1;
  options.max_batch = 8;
  options.max_wait_ms = 1500;  // the first request waits in the queue for the half-sent one
  Served served(options);
  const HalfSentRequest on_its_way(served);
  const std::string png = png_of("ab12");
  auto first = std::async(std::launch::async, [&] { return served.client().Post("/v1/read", png, "image/png")->status; });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = served.client().Post("/v1/read", png, "image/png");
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(first.get(), 200);
}

// stop() while a request waits for its batch: the request is still answered.
TEST(Serve, StopAnswersTheRequestsInFlight) {
  ServerOptions options;
  options.max_wait_ms = 4000;  // the request waits in the queue for the half-sent one to join it
  options.request_timeout_s = 10;
  Served served(options);
  const HalfSentRequest on_its_way(served);
  const std::string png = png_of("ab12");
  auto in_flight = std::async(std::launch::async, [&] {
    auto r = served.client().Post("/v1/read", png, "image/png");
    return r ? r->status : -1;
  });
  const std::string queued = metrics_once_they_hold(served, "captcha_queued_images{model=\"general\"} 1");
  EXPECT_NE(queued.find("captcha_queued_images{model=\"general\"} 1"), std::string::npos) << queued;
  served.server().stop();
  EXPECT_EQ(in_flight.get(), 200);
}

// captcha_platform's signed route: what its demo client sends (the body's fields sorted,
// "k=v" joined by '&', the secret appended, MD5 in upper case) is read; a stale timestamp, an
// unknown access key or a wrong signature get that project's codes.
TEST(Serve, CaptchaPlatformSignedRequestsAreChecked) {
  ServerOptions options;
  options.signing_keys = {{"C180130204197838", "62d7eb0d370e603acd651066236c878b"}};
  options.api_keys = {"not needed there"};
  Served served(options);
  auto client = served.client();
  const std::string png = png_of("r8t2");
  const long long now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  json body = {{"image", base64(png)}, {"accessKey", "C180130204197838"}, {"timestamp", now}, {"model_name", "general"}};
  // Computed here as the client does, independently of the server's code.
  const std::string query = "accessKey=C180130204197838&image=" + base64(png) + "&model_name=general&timestamp=" +
                            std::to_string(now) + "&62d7eb0d370e603acd651066236c878b";
  body["sign"] = md5_upper(query);
  EXPECT_EQ(body["sign"], serve::captcha_platform_signature(body, "62d7eb0d370e603acd651066236c878b"));
  json answer = body_json(client.Post("/captcha/auth/v2", body.dump(), "application/json"));
  EXPECT_EQ(answer.at("success"), true) << answer;
  EXPECT_EQ(answer.at("message"), expected_reading(png));
  EXPECT_EQ(answer.at("code"), 0);

  const auto refused = [&](json altered) {
    const json a = body_json(client.Post("/captcha/auth/v2", altered.dump(), "application/json"));
    EXPECT_EQ(a.at("success"), false) << a;
    return a.at("code").get<int>();
  };
  json wrong = body;
  wrong["sign"] = std::string(32, 'A');
  EXPECT_EQ(refused(wrong), 400006);
  wrong = body;
  wrong["model_name"] = "other";  // signed fields changed after signing
  EXPECT_EQ(refused(wrong), 400006);
  wrong = body;
  wrong["accessKey"] = "C000000000000000";
  EXPECT_EQ(refused(wrong), 400005);
  wrong = body;
  wrong["timestamp"] = now - 600;
  EXPECT_EQ(refused(wrong), 400004);
  wrong = body;
  wrong.erase("sign");
  EXPECT_EQ(refused(wrong), 400001);
  // The unsigned route still needs the API key the server asks for.
  EXPECT_EQ(client.Post("/captcha/v1", json{{"image", base64(png)}}.dump(), "application/json")->status, 401);
}

// Python's str() of the values captcha_platform's clients sign: a list of images is signed as
// "['a', 'b']", True as "True".
TEST(Serve, SignaturesFormatValuesAsPython) {
  const json body = {{"image", {"ab", "c'd"}}, {"flag", true}, {"n", 12}, {"sign", "ignored"}};
  EXPECT_EQ(serve::captcha_platform_signature(body, "s"),
            md5_upper("flag=True&image=['ab', \"c'd\"]&n=12&s"));
}

TEST(Serve, ThePageIsServedWithoutAKey) {
  ServerOptions options;
  options.api_keys = {"k"};
  Served served(options);
  auto r = served.client().Get("/");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<title>captcha-ocr</title>"), std::string::npos);
  EXPECT_EQ(r->body.find("http://"), std::string::npos);  // no outside assets
  EXPECT_EQ(r->body.find("https://"), std::string::npos);
}

// ChromeDriver on a free port, spoken to over WebDriver's HTTP protocol; stopped with the test.
class ChromeDriver {
 public:
  static constexpr const char* kDriver = "/usr/bin/chromedriver";
  static constexpr const char* kBrowser = "/usr/bin/chromium";
  static bool available() { return ::access(kDriver, X_OK) == 0 && ::access(kBrowser, X_OK) == 0; }

  ChromeDriver() {
    const int port = free_port();
    const std::string port_flag = "--port=" + std::to_string(port);  // made before fork: the child only execs
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(kDriver, kDriver, port_flag.c_str(), "--log-level=OFF", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    try {
      client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
      client_->set_read_timeout(60);
      for (int i = 0; i < 200 && !client_->Get("/status"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const json options = {{"binary", kBrowser},
                            {"args", {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                      "--window-size=1000,900"}}};
      const json answer = command("POST", "/session",
                                  {{"capabilities", {{"alwaysMatch", {{"goog:chromeOptions", options}}}}}});
      session_ = answer.at("sessionId").get<std::string>();
    } catch (...) {
      stop();
      throw;
    }
  }
  ~ChromeDriver() { stop(); }
  ChromeDriver(const ChromeDriver&) = delete;
  ChromeDriver& operator=(const ChromeDriver&) = delete;

  // A command of the session (`path` after /session/<id>); returns the answer's "value".
  json session(const std::string& method, const std::string& path, const json& body = json::object()) {
    return command(method, "/session/" + session_ + path, body);
  }
  json script(const std::string& code) { return session("POST", "/execute/sync", {{"script", code}, {"args", json::array()}}); }

 private:
  static int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t size = sizeof address;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&address), &size);
    ::close(s);
    return ntohs(address.sin_port);
  }
  json command(const std::string& method, const std::string& path, const json& body) {
    const auto r = method == "GET" ? client_->Get(path) : client_->Post(path, body.dump(), "application/json");
    if (!r) throw std::runtime_error("chromedriver did not answer " + method + " " + path);
    if (r->status != 200) throw std::runtime_error("chromedriver: " + method + " " + path + ": " + r->body);
    return json::parse(r->body).value("value", json());
  }

  void stop() {
    if (client_ && !session_.empty()) client_->Delete("/session/" + session_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  std::unique_ptr<httplib::Client> client_;
  std::string session_;
};

// The page in a real browser: an image chosen in the file input is sent to /v1/read and its
// reading shown, with one bar per character. The screenshot is kept as
// build/tests/test-artifacts/serve-page.png.
TEST(Serve, ThePageReadsAnImageInABrowser) {
  if (!ChromeDriver::available())
    GTEST_SKIP() << "no " << ChromeDriver::kDriver << " or " << ChromeDriver::kBrowser
                 << " (apt install chromium chromium-driver; scripts/setup.sh installs them)";
  Served served;
  testing::TempDir dir("serve-page");
  const std::string png = png_of("q4mx7", 3);
  testing::write_file(dir / "captcha.png", png);
  ChromeDriver browser;
  browser.session("POST", "/url", {{"url", "http://127.0.0.1:" + std::to_string(served.port()) + "/"}});
  const json element = browser.session("POST", "/element", {{"using", "css selector"}, {"value", "#file"}});
  const std::string id = element.begin().value().get<std::string>();
  browser.session("POST", "/element/" + id + "/value", {{"text", dir / "captcha.png"}});
  json shown;
  for (int i = 0; i < 200 && shown.is_null(); ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    shown = browser.script("return document.body.dataset.read === undefined ? null : document.body.dataset.read;");
  }
  ASSERT_FALSE(shown.is_null()) << "the page showed no reading; its error line: "
                                << browser.script("return document.getElementById('error').textContent;");
  const std::string expected = expected_reading(png);
  EXPECT_EQ(shown.get<std::string>(), expected);
  EXPECT_EQ(browser.script("return document.getElementById('text').textContent;").get<std::string>(), expected);
  EXPECT_EQ(browser.script("return document.querySelectorAll('#characters tr').length;").get<std::size_t>(),
            expected.size());
  EXPECT_EQ(browser.script("return document.getElementById('error').textContent;").get<std::string>(), "");
  EXPECT_FALSE(browser.script("return document.getElementById('keybox').offsetParent !== null;").get<bool>())
      << "the API key field is shown by a service that needs none";
  const std::string screenshot = browser.session("GET", "/screenshot").get<std::string>();
  EXPECT_GT(screenshot.size(), 1000u);
  const std::vector<std::uint8_t> image = serve::decode_base64(screenshot, "the screenshot");
  std::filesystem::create_directories(CAPTCHA_TEST_ARTIFACTS);
  testing::write_file(CAPTCHA_TEST_ARTIFACTS "/serve-page.png", std::string(image.begin(), image.end()));
}

TEST(Serve, BadOptionsAndModelsAreRefusedAtStart) {
  std::ostringstream log;
  ServerOptions options;
  EXPECT_THROW(Server(options, log), ConfigError);  // no model
  options.models = {{"a", kModel}, {"a", kModel}};
  EXPECT_THROW(Server(options, log), ConfigError);  // a name twice
  options.models = {{"a", "/no/such/model.safetensors"}};
  EXPECT_THROW(Server(options, log), Error);
  testing::TempDir dir("serve-keys");
  testing::write_file(dir / "keys", "# comments only\n\n");
  EXPECT_THROW(read_api_keys(dir / "keys"), Error);
  testing::write_file(dir / "keys", "# a key\nabc \n\nxyz\n");
  EXPECT_EQ(read_api_keys(dir / "keys"), (std::vector<std::string>{"abc", "xyz"}));
  testing::write_file(dir / "signing", "# access secret\nAK1 SK1\n\n  AK2\tSK2  \n");
  const std::vector<SigningKey> signing = read_signing_keys(dir / "signing");
  ASSERT_EQ(signing.size(), 2u);
  EXPECT_EQ(signing[1].access_key, "AK2");
  EXPECT_EQ(signing[1].secret_key, "SK2");
  testing::write_file(dir / "signing", "AK1 SK1\nAK2\n");
  try {
    read_signing_keys(dir / "signing");
    ADD_FAILURE() << "a line without a secret was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("signing:2: expected ACCESS_KEY SECRET_KEY"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace captcha
