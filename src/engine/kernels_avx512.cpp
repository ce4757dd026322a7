// The dense and recurrent kernels built for AVX-512 (see kernels.cpp for the dispatch).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gemm_kernel.h"
#include "gemm_kernel_avx512.h"
#include "kernels.h"

#define CAPTCHA_KERNELS_TARGET avx512
#include "kernels.inc"
