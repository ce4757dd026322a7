// Dynamic batching for the service: images of concurrent requests for one model are gathered
// until max_batch images wait or the first has waited max_wait, then read as one batch on the
// engine by the model's own worker thread. Requests are gathered only with others read the same
// way (views, beam, allowed symbols, lengths); decoding and preprocessing stay in the request
// threads, in parallel.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "captcha/errors.h"
#include "captcha/recogniser.h"

namespace captcha::serve {

// The queue is full: the caller answers 503 and asks the client to retry.
class QueueFull : public Error {
 public:
  using Error::Error;
};

struct BatcherOptions {
  int max_batch = 32;
  std::chrono::microseconds max_wait{2000};
  std::size_t max_queue = 1024;  // images waiting, beyond which submit() refuses
  int threads = 0;               // the engine's threads in the worker (<= 0: every core)
};

class Batcher {
 public:
  // `recogniser` must outlive the batcher. `on_batch(images)` is told each batch's size.
  Batcher(const Recogniser& recogniser, const BatcherOptions& options,
          std::function<void(std::size_t images)> on_batch = {});
  ~Batcher();  // finishes the batches queued, then stops
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `prepared` images (Recogniser::prepare) to be read with `options`; the future gives
  // their readings in order, or the engine's exception. Throws QueueFull.
  std::future<std::vector<Reading>> submit(std::vector<cv::Mat> prepared, const ReadOptions& options);
  std::size_t queued_images() const;

 private:
  struct Job {
    std::vector<cv::Mat> images;
    ReadOptions options;
    std::chrono::steady_clock::time_point arrived;
    std::promise<std::vector<Reading>> promise;
  };
  void run();
  std::vector<Job> take_batch(std::unique_lock<std::mutex>& lock);

  const Recogniser& recogniser_;
  const BatcherOptions options_;
  const std::function<void(std::size_t)> on_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::size_t queued_images_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace captcha::serve
