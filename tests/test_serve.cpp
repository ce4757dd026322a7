// captcha-ocr serve: the native API, the endpoints ddddocr's and captcha_platform's clients call
// (the requests they send, the shapes they read), authentication, limits, batching, metrics
// and a graceful stop. A real server on a free loopback port, the bundled model.
#include "captcha/server.h"

#include <httplib.h>

#include <atomic>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "captcha/image_io.h"
#include "captcha/recogniser.h"
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
    options.threads = 1;
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
  std::string log() const { return log_.str(); }

 private:
  std::ostringstream log_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
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
  for (const auto& c : answer.at("characters")) EXPECT_LE(c.at("probability").get<double>(), 1.0);

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
TEST(Serve, ConcurrentRequestsAreReadInBatches) {
  ServerOptions options;
  options.max_wait_ms = 200;
  options.max_batch = 8;
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
}

TEST(Serve, AFullQueueAnswersRetryLater) {
  ServerOptions options;
  options.max_queue = 1;
  options.max_batch = 8;
  options.max_wait_ms = 1500;  // the first request waits in the queue
  Served served(options);
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
  options.max_wait_ms = 800;
  Served served(options);
  const std::string png = png_of("ab12");
  auto in_flight = std::async(std::launch::async, [&] {
    auto r = served.client().Post("/v1/read", png, "image/png");
    return r ? r->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  served.server().stop();
  EXPECT_EQ(in_flight.get(), 200);
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
}

}  // namespace
}  // namespace captcha
