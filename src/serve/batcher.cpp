#include "batcher.h"

#include <algorithm>

#include "captcha/inference.h"

namespace captcha::serve {

namespace {

bool read_alike(const ReadOptions& a, const ReadOptions& b) {
  return a.beam_width == b.beam_width && a.allowed == b.allowed && a.any_length == b.any_length && a.views == b.views;
}

}  // namespace

Batcher::Batcher(const Recogniser& recogniser, const Arrivals& arrivals, const BatcherOptions& options,
                 std::function<void(std::size_t)> on_batch)
    : recogniser_(recogniser),
      arrivals_(arrivals),
      options_(options),
      on_batch_(std::move(on_batch)),
      threads_(options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { run(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

std::future<std::vector<ReadResult>> Batcher::submit(std::vector<ImageInput> images, const ReadOptions& options) {
  Job job{std::move(images), options, std::chrono::steady_clock::now(), {}};
  std::future<std::vector<ReadResult>> result = job.promise.get_future();
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

// Waits until max_batch images read alike are queued, no other request is on its way, or the
// oldest has waited max_wait; then takes the oldest job and those read like it, up to max_batch
// images (a larger job goes alone).
std::vector<Batcher::Job> Batcher::take_batch(std::unique_lock<std::mutex>& lock) {
  const auto alike_images = [this] {
    std::size_t count = 0;
    for (const Job& job : queue_)
      if (read_alike(job.options, queue_.front().options)) count += job.images.size();
    return count;
  };
  const auto max_batch = static_cast<std::size_t>(std::max(1, options_.max_batch));
  const auto deadline = queue_.front().arrived + options_.max_wait;
  // A request that arrives notifies; one that leaves without queueing does not, so the count
  // is looked at again every tenth of max_wait.
  // Another worker may take the queue meanwhile.
  while (!stopping_ && !queue_.empty() && alike_images() < max_batch && arrivals_.count() > 0 &&
         std::chrono::steady_clock::now() < deadline)
    wake_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + options_.max_wait / 10 +
                                                  std::chrono::microseconds(1)));
  std::vector<Job> batch;
  if (queue_.empty()) return batch;
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

// Decodes, prepares and reads the batch's images together; each job gets its own results.
void Batcher::read_batch(std::vector<Job>& batch, int threads) const {
  std::vector<ImageInput> images;
  for (Job& job : batch)
    for (ImageInput& image : job.images) images.push_back(std::move(image));
  try {
    BatchOptions options;
    options.read = batch.front().options;
    options.read.batch_size = static_cast<int>(images.size());
    options.threads = threads;
    options.limits = options_.limits;
    std::vector<ReadResult> results = read_images(recogniser_, images, options);
    const auto read = static_cast<std::size_t>(
        std::count_if(results.begin(), results.end(), [](const ReadResult& r) { return r.ok(); }));
    if (on_batch_ && read > 0) on_batch_(read);
    auto next = results.begin();
    for (Job& job : batch) {
      const auto end = next + static_cast<std::ptrdiff_t>(job.images.size());
      job.promise.set_value(std::vector<ReadResult>(std::make_move_iterator(next), std::make_move_iterator(end)));
      next = end;
    }
  } catch (...) {
    for (Job& job : batch) job.promise.set_exception(std::current_exception());
  }
}

void Batcher::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::vector<Job> batch = take_batch(lock);
    if (batch.empty()) continue;  // another worker took them while this one waited
    // Alone, every thread; beside other workers, an equal share.
    const int threads = std::max(1, threads_ / (reading_ + 1));
    ++reading_;
    lock.unlock();
    set_inference_threads(threads);
    read_batch(batch, threads);
    lock.lock();
    --reading_;
  }
}

}  // namespace captcha::serve
