#include "batcher.h"

#include "captcha/inference.h"

namespace captcha::serve {

namespace {

bool read_alike(const ReadOptions& a, const ReadOptions& b) {
  return a.beam_width == b.beam_width && a.allowed == b.allowed && a.any_length == b.any_length && a.views == b.views;
}

}  // namespace

Batcher::Batcher(const Recogniser& recogniser, const BatcherOptions& options,
                 std::function<void(std::size_t)> on_batch)
    : recogniser_(recogniser), options_(options), on_batch_(std::move(on_batch)), worker_([this] { run(); }) {}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

std::future<std::vector<Reading>> Batcher::submit(std::vector<cv::Mat> prepared, const ReadOptions& options) {
  Job job{std::move(prepared), options, std::chrono::steady_clock::now(), {}};
  std::future<std::vector<Reading>> result = job.promise.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw QueueFull("the service is shutting down");
    if (queued_images_ + job.images.size() > options_.max_queue)
      throw QueueFull("the queue is full (" + std::to_string(queued_images_) + " images waiting)");
    queued_images_ += job.images.size();
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return result;
}

std::size_t Batcher::queued_images() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_images_;
}

// Waits until max_batch images read alike are queued or the oldest has waited max_wait, then
// takes the oldest job and those read like it, up to max_batch images (a larger job goes alone).
std::vector<Batcher::Job> Batcher::take_batch(std::unique_lock<std::mutex>& lock) {
  const auto alike_images = [this] {
    std::size_t count = 0;
    for (const Job& job : queue_)
      if (read_alike(job.options, queue_.front().options)) count += job.images.size();
    return count;
  };
  const auto max_batch = static_cast<std::size_t>(std::max(1, options_.max_batch));
  wake_.wait_until(lock, queue_.front().arrived + options_.max_wait,
                   [&] { return stopping_ || alike_images() >= max_batch; });
  std::vector<Job> batch;
  std::size_t images = 0;
  const ReadOptions options = queue_.front().options;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const bool fits = batch.empty() || images + it->images.size() <= max_batch;
    if (!read_alike(it->options, options) || !fits) {
      ++it;
      continue;
    }
    images += it->images.size();
    batch.push_back(std::move(*it));
    it = queue_.erase(it);
    if (images >= max_batch) break;
  }
  queued_images_ -= images;
  return batch;
}

void Batcher::run() {
  set_inference_threads(options_.threads);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::vector<Job> batch = take_batch(lock);
    lock.unlock();
    std::vector<cv::Mat> images;
    for (const Job& job : batch) images.insert(images.end(), job.images.begin(), job.images.end());
    try {
      ReadOptions options = batch.front().options;
      options.batch_size = static_cast<int>(images.size());
      const std::vector<Reading> readings = recogniser_.read_prepared(images, options);
      if (on_batch_) on_batch_(images.size());
      std::size_t next = 0;
      for (Job& job : batch) {
        job.promise.set_value(std::vector<Reading>(readings.begin() + next, readings.begin() + next + job.images.size()));
        next += job.images.size();
      }
    } catch (...) {
      for (Job& job : batch) job.promise.set_exception(std::current_exception());
    }
    lock.lock();
  }
}

}  // namespace captcha::serve
