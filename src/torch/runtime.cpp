// Process-wide set-up for training: LibTorch's threads, glibc's freed memory, and OpenBLAS's AVX2
// kernels on CPUs that the installed OpenBLAS does not know.
#include "captcha/training_process.h"

#include <dlfcn.h>
#include <malloc.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>

#include <torch/torch.h>

namespace captcha {

namespace {

constexpr const char* kCoreVariable = "OPENBLAS_CORETYPE";

// OpenBLAS's own name for the kernels it loaded, or "" when the BLAS is not OpenBLAS.
std::string openblas_core() {
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = core_name != nullptr ? core_name() : nullptr;
  return name != nullptr ? name : "";
}

}  // namespace

std::string blas_description() {
  const std::string core = openblas_core();
  if (core.empty()) return "not OpenBLAS";
  std::string text = "OpenBLAS " + core + " kernels";
  if (const char* forced = std::getenv(kCoreVariable)) text += std::string(" (") + kCoreVariable + "=" + forced + ")";
  return text;
}

void restart_with_fast_blas(char** argv) {
  if (std::getenv(kCoreVariable) != nullptr) return;  // the user's choice, or already restarted
  if (strcasecmp(openblas_core().c_str(), "prescott") != 0) return;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
  setenv(kCoreVariable, "Haswell", 1);
  execv("/proc/self/exe", argv);
  unsetenv(kCoreVariable);  // exec failed: carry on with the slow kernels
}

void configure_training_process(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  // glibc hands blocks over 128 KiB-32 MiB to mmap and back to the kernel when freed; kept
  // instead for the next batch.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

}  // namespace captcha
