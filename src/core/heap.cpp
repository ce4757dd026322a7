#include "captcha/heap.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>  // defines __GLIBC__ where the C library is glibc
#include <cstring>

#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace captcha {

void tune_heap_for_reading() {
#if defined(__linux__) && defined(__GLIBC__)
  constexpr int kMiB = 1 << 20;
  mallopt(M_MMAP_THRESHOLD, 256 * kMiB);  // buffers up to this size come from the heap
  mallopt(M_TRIM_THRESHOLD, 512 * kMiB);  // and stay there, once freed, for the next ones
  mallopt(M_TOP_PAD, 32 * kMiB);          // the heap grows 32 MiB at a time
  // Grow the heap, then mark all of it for huge pages: later growth extends the same mapping,
  // which keeps the mark.
  void* volatile probe = std::malloc(kMiB);
  std::free(probe);
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return;
  char line[512];
  while (std::fgets(line, sizeof line, maps)) {
    unsigned long from = 0, to = 0;
    if (std::strstr(line, "[heap]") && std::sscanf(line, "%lx-%lx", &from, &to) == 2 && to > from) {
      madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE);  // advice: failure is harmless
      break;
    }
  }
  std::fclose(maps);
#endif
}

void prefault(void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  if (bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto from = reinterpret_cast<std::uintptr_t>(data) / page * page;
  const auto to = reinterpret_cast<std::uintptr_t>(data) + bytes;
  madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);  // advice: failure is harmless
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace captcha
