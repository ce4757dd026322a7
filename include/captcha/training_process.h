// Process-wide set-up for training with LibTorch: its thread count, glibc's handling of large
// freed blocks, and the choice of OpenBLAS kernels. No LibTorch in this header.
#pragma once

#include <string>

namespace captcha {

// Sets LibTorch's intra-op threads (`threads` > 0, or every core), and has glibc keep freed
// memory for reuse instead of returning large blocks to the kernel: each batch's activations
// (tens of MB) would otherwise come as fresh pages, faulted in and zeroed at every step (about
// 40% of a training step on a 2-core machine). train() calls it.
void configure_training_process(int threads);

// Debian 12's OpenBLAS (0.3.21) falls back to its SSE3 "Prescott" kernels on CPUs newer than
// itself (e.g. this project's Xeon, family 6 model 207), and training steps then take a third
// longer. It reads its OPENBLAS_CORETYPE variable only when it is loaded, so this sets the
// variable to its AVX2 kernels ("Haswell") and starts the program again with `argv`, when
// OpenBLAS chose Prescott on a CPU with AVX2 and FMA and the variable was not set. Returns
// (doing nothing) otherwise, or when the restart fails. Call it first in main().
void restart_with_fast_blas(char** argv);

// The BLAS kernels in use, for logs: "OpenBLAS Haswell kernels (OPENBLAS_CORETYPE=Haswell)".
std::string blas_description();

}  // namespace captcha
