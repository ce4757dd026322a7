// Picks OpenBLAS's AVX2 kernels on CPUs that the installed OpenBLAS does not know.
#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "captcha/trainer.h"

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

}  // namespace captcha
