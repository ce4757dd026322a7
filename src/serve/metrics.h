// The service's counters, in Prometheus' text exposition format: requests by endpoint and status
// code, request latency, batch sizes and images read per model. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace captcha::serve {

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status, double seconds);
  void count_batch(const std::string& model, std::size_t images);
  // Everything counted so far, with each model's images waiting now and the requests being
  // received now (body not yet read: they may still join a batch).
  std::string exposition(const std::map<std::string, std::size_t>& queued_images, int receiving_requests) const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> buckets;  // cumulative counts are formed when written
    double sum = 0;
    std::uint64_t count = 0;
  };
  static void observe(Histogram& histogram, const std::vector<double>& bounds, double value);

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  Histogram latency_;
  std::map<std::string, Histogram> batch_sizes_;
  std::map<std::string, std::uint64_t> images_;
};

}  // namespace captcha::serve
