// The dense and recurrent kernels built for AVX2 + FMA (see kernels.cpp for the dispatch).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gemm_kernel.h"
#include "kernels.h"

#define CAPTCHA_KERNELS_TARGET avx2
#include "kernels.inc"
