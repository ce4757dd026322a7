#include "metrics.h"

#include <sstream>

namespace captcha::serve {

namespace {

const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

// A label value with `\`, `"` and newlines escaped, as the format asks.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? 'n' : c;
  }
  return out;
}

void write_histogram(std::ostringstream& out, const std::string& name, const std::string& labels,
                     const std::vector<double>& bounds, const std::vector<std::uint64_t>& buckets, double sum,
                     std::uint64_t count) {
  const std::string separator = labels.empty() ? "" : ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    cumulative += i < buckets.size() ? buckets[i] : 0;
    out << name << "_bucket{" << labels << separator << "le=\"" << bounds[i] << "\"} " << cumulative << "\n";
  }
  out << name << "_bucket{" << labels << separator << "le=\"+Inf\"} " << count << "\n";
  out << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << " " << sum << "\n";
  out << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << " " << count << "\n";
}

}  // namespace

void Metrics::observe(Histogram& histogram, const std::vector<double>& bounds, double value) {
  histogram.buckets.resize(bounds.size());
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (value <= bounds[i]) {
      ++histogram.buckets[i];
      break;
    }
  histogram.sum += value;
  ++histogram.count;
}

void Metrics::count_request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
  observe(latency_, kLatencyBounds, seconds);
}

void Metrics::count_batch(const std::string& model, std::size_t images) {
  std::lock_guard<std::mutex> lock(mutex_);
  observe(batch_sizes_[model], kBatchBounds, static_cast<double>(images));
  images_[model] += images;
}

std::string Metrics::exposition(const std::map<std::string, std::size_t>& queued_images,
                                 int receiving_requests) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << "# HELP captcha_requests_total Requests answered, by endpoint and HTTP status code.\n"
      << "# TYPE captcha_requests_total counter\n";
  for (const auto& [key, count] : requests_)
    out << "captcha_requests_total{endpoint=\"" << label(key.first) << "\",code=\"" << key.second << "\"} " << count << "\n";
  out << "# HELP captcha_request_seconds Time from a request's arrival to its answer.\n"
      << "# TYPE captcha_request_seconds histogram\n";
  write_histogram(out, "captcha_request_seconds", "", kLatencyBounds, latency_.buckets, latency_.sum, latency_.count);
  out << "# HELP captcha_batch_images Images read together in one batch on the engine, by model.\n"
      << "# TYPE captcha_batch_images histogram\n";
  for (const auto& [model, histogram] : batch_sizes_)
    write_histogram(out, "captcha_batch_images", "model=\"" + label(model) + "\"", kBatchBounds, histogram.buckets,
                    histogram.sum, histogram.count);
  out << "# HELP captcha_images_total Images read, by model.\n# TYPE captcha_images_total counter\n";
  for (const auto& [model, count] : images_) out << "captcha_images_total{model=\"" << label(model) << "\"} " << count << "\n";
  out << "# HELP captcha_queued_images Images waiting for the engine now, by model.\n"
      << "# TYPE captcha_queued_images gauge\n";
  for (const auto& [model, count] : queued_images)
    out << "captcha_queued_images{model=\"" << label(model) << "\"} " << count << "\n";
  out << "# HELP captcha_receiving_requests Requests whose bodies are being received now.\n"
      << "# TYPE captcha_receiving_requests gauge\n"
      << "captcha_receiving_requests " << receiving_requests << "\n";
  return out.str();
}

}  // namespace captcha::serve
