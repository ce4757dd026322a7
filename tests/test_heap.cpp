// tune_heap_for_reading: large buffers come from the heap, which is marked for huge pages.
#include "captcha/heap.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace captcha {
namespace {

// The VmFlags of the mapping of this process that holds `address`, or "" where none does.
std::string mapping_flags(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    std::uintptr_t from = 0, to = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> from >> dash >> to && dash == '-' && line.find(':') > line.find(' ')) {
      inside = from <= at && at < to;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kOwnAllocator = true;  // AddressSanitizer's allocator replaces glibc's
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kOwnAllocator = true;
#else
constexpr bool kOwnAllocator = false;
#endif
#else
constexpr bool kOwnAllocator = false;
#endif

TEST(Heap, LargeBuffersComeFromAHeapMarkedForHugePages) {
  if (kOwnAllocator) GTEST_SKIP() << "built with AddressSanitizer, whose allocator glibc's settings do not reach";
  tune_heap_for_reading();
  void* volatile buffer = std::malloc(8 << 20);
  ASSERT_NE(buffer, nullptr);
  // Below the program break: the heap, not a mapping of its own (unmapped again when freed).
  EXPECT_LT(reinterpret_cast<std::uintptr_t>(buffer), reinterpret_cast<std::uintptr_t>(sbrk(0)));
  std::string mode;
  std::getline(std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"), mode);
  if (mode.empty() || mode.find("[never]") != std::string::npos) {
    std::free(buffer);
    GTEST_SKIP() << "transparent huge pages are off on this system";
  }
  const std::string flags = mapping_flags(buffer);
  EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  std::free(buffer);
}

// Minor page faults of this process so far.
long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

TEST(Heap, PrefaultMapsTheBufferBeforeItIsWritten) {
  if (kOwnAllocator) GTEST_SKIP() << "built with AddressSanitizer, whose shadow memory takes faults of its own";
  constexpr std::size_t kBytes = std::size_t{4} << 20;
  const long page = sysconf(_SC_PAGESIZE);
  void* fresh = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(fresh, MAP_FAILED);
  madvise(fresh, kBytes, MADV_NOHUGEPAGE);  // a fault per 4 KiB page if written unprepared
  // Whether this kernel populates on request at all (Linux 5.14 and later).
  void* probe = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
#ifdef MADV_POPULATE_WRITE
  const bool supported = madvise(probe, page, MADV_POPULATE_WRITE) == 0;
#else
  const bool supported = false;
#endif
  munmap(probe, page);
  if (!supported) {
    munmap(fresh, kBytes);
    GTEST_SKIP() << "this kernel does not populate pages on request (MADV_POPULATE_WRITE)";
  }
  prefault(static_cast<char*>(fresh) + 100, kBytes - 100);  // an unaligned start: its page too
  const long before = minor_faults();
  std::memset(fresh, 1, kBytes);
  const long faults = minor_faults() - before;
  munmap(fresh, kBytes);
  EXPECT_LT(faults, 8) << "writing " << kBytes / page << " prefaulted pages took " << faults << " faults";
}

}  // namespace
}  // namespace captcha
