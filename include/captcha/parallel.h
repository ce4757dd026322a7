// A minimal parallel loop over indices for CPU-bound work (decoding, preprocessing).
#pragma once

#include <cstddef>
#include <functional>

namespace captcha {

// Calls body(i) for i in [0, count) on up to `threads` threads (<= 0: every core). Where body
// throws, no further index is started, every thread is joined and the first exception is
// rethrown to the caller (work that fails per item should catch inside body and record it).
void parallel_for(std::size_t count, int threads, const std::function<void(std::size_t)>& body);

}  // namespace captcha
