// Dynamic batching for the service: the images of concurrent requests for one model are
// gathered and read as one batch by one of the model's worker threads, which decodes and
// prepares them in parallel and then runs the engine, so that the CPU-heavy work never competes
// with itself across dozens of connection threads. Requests are gathered only with others read
// the same way (views, beam, allowed symbols, lengths).
//
// There is a worker per engine thread. A worker that reads while the others are idle uses every
// thread (a lone request is read as fast as the engine can); under load each worker reads its own
// batch on its share of them, which keeps the cores busier than threads waiting on one another
// inside one batch.
//
// A batch is read as soon as max_batch images wait, or no other request is on its way (see
// Arrivals: a lone request is not kept waiting), or the oldest has waited max_wait.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/reader.h"
#include "captcha/recogniser.h"

namespace captcha::serve {

// The queue is full: the caller answers 503 and asks the client to retry.
class QueueFull : public Error {
 public:
  using Error::Error;
};

// Requests received or being parsed that may still join a batch. A request holds a Ticket
// from its first byte until it is queued (or answered without reading).
class Arrivals {
 public:
  class Ticket {
   public:
    explicit Ticket(Arrivals& arrivals) : arrivals_(&arrivals) { ++arrivals.count_; }
    ~Ticket() { leave(); }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    void leave() {
      if (arrivals_) --arrivals_->count_;
      arrivals_ = nullptr;
    }

   private:
    Arrivals* arrivals_;
  };
  int count() const { return count_; }

 private:
  std::atomic<int> count_{0};
};

struct BatcherOptions {
  int max_batch = 32;
  std::chrono::microseconds max_wait{2000};
  std::size_t max_queue = 1024;  // images waiting, beyond which submit() refuses
  int threads = 0;               // decoding and engine threads in all (<= 0: every core)
  ImageLimits limits;            // per image, checked before decoding
};

class Batcher {
 public:
  // `recogniser` and `arrivals` must outlive the batcher. `on_batch(images)` is told how many
  // images each batch read (those that could not be decoded are not counted).
  Batcher(const Recogniser& recogniser, const Arrivals& arrivals, const BatcherOptions& options,
          std::function<void(std::size_t images)> on_batch = {});
  ~Batcher();  // finishes the batches queued, then stops
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues encoded `images` to be read with `options`; the future gives a result for each, in
  // order (a reading, or the one-line error of an image that could not be decoded), or the
  // engine's exception (ConfigError for options it refuses). Throws QueueFull.
  std::future<std::vector<ReadResult>> submit(std::vector<ImageInput> images, const ReadOptions& options);
  std::size_t queued_images() const;

 private:
  struct Job {
    std::vector<ImageInput> images;
    ReadOptions options;
    std::chrono::steady_clock::time_point arrived;
    std::promise<std::vector<ReadResult>> promise;
  };
  void run();
  std::vector<Job> take_batch(std::unique_lock<std::mutex>& lock);
  void read_batch(std::vector<Job>& batch, int threads) const;

  const Recogniser& recogniser_;
  const Arrivals& arrivals_;
  const BatcherOptions options_;
  const std::function<void(std::size_t)> on_batch_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::size_t queued_images_ = 0;
  bool stopping_ = false;
  int threads_ = 1;  // options_.threads resolved
  int reading_ = 0;  // workers reading a batch
  std::vector<std::thread> workers_;
};

}  // namespace captcha::serve
