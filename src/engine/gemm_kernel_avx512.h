// The engine's register-blocked AVX-512 product kernel (see gemm_kernel.h). Its functions carry
// the AVX-512 target themselves: call them only from functions that do too (or from code
// compiled with -mavx512f), and only where the CPU has it.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace captcha::engine {
namespace {

// C[R][32] (+)= A[R][k] . [P0 | P1], P0 and P1 two 16-column panels (rows `ldb` apart): two
// 512-bit accumulators per row, so that each broadcast of A feeds two FMAs.
#define CAPTCHA_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))

template <int R>
CAPTCHA_AVX512_TARGET __attribute__((always_inline)) inline void kernel_rx32(const float* a, std::size_t lda, const float* p0, const float* p1,
                                                       int ldb, int k, float* c, int ldc, bool accumulate) {
  __m512 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_loadu_ps(p0 + p * ldb), b1 = _mm512_loadu_ps(p1 + p * ldb);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + p]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_loadu_ps(c + r * ldc));
      acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_loadu_ps(c + r * ldc + 16));
    }
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

// kernel_rx32 for `rows` (1 to 6) rows.
CAPTCHA_AVX512_TARGET inline void kernel_rows_x32(int rows, const float* a, std::size_t lda, const float* p0, const float* p1, int ldb, int k,
                            float* c, int ldc, bool accumulate) {
  switch (rows) {
    case 6: kernel_rx32<6>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    case 5: kernel_rx32<5>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    case 4: kernel_rx32<4>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    case 3: kernel_rx32<3>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    case 2: kernel_rx32<2>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    case 1: kernel_rx32<1>(a, lda, p0, p1, ldb, k, c, ldc, accumulate); break;
    default: break;
  }
}

}  // namespace
}  // namespace captcha::engine
