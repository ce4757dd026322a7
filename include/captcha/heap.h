// How the process's heap takes memory from the system, tuned for programs that read images.
//
// A fresh process that loads the bundled model and reads one image touches about 20 MiB of new
// memory: the model file, its tensors, the packed weights, the engine's buffers. On virtual
// machines a page fault can cost 10 us or more, and those 5,000 faults were most of the run.
// tune_heap_for_reading() makes glibc keep large buffers on the heap (reused once freed instead
// of unmapped and faulted in again), grow the heap in large steps, and asks the kernel to back
// the heap with 2 MiB pages where it allows that on request (transparent huge pages in
// "madvise" mode, Debian's default).
//
// Call it once, early in main() and before other threads start, in programs that read (not
// while training: LibTorch's large tensors are better served by their own mappings). Linux with
// glibc only; elsewhere it does nothing.
#pragma once

#include <cstddef>

namespace captcha {

void tune_heap_for_reading();

// Maps in the pages under [data, data + bytes), about to be written, in one call
// (MADV_POPULATE_WRITE, Linux 5.14 and later) instead of a fault per page: several times
// cheaper per page on virtual machines. Where the kernel lacks it, it does nothing.
void prefault(void* data, std::size_t bytes);

}  // namespace captcha
