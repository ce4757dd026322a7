// The RNN kernels built for AVX2 + FMA (see rnn.cpp for the dispatch).
#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

#include "rnn.h"

#define CAPTCHA_RNN_TARGET avx2
#include "rnn_kernels.inc"
