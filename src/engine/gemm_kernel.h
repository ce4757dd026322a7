// The engine's register-blocked AVX2 + FMA product kernel, shared by the dense and recurrent
// kernels (kernels.inc, AVX2 and AVX-512 builds) and the Winograd convolution (small_cnn.cpp).
// Include only in code compiled with -mavx2 -mfma; internal linkage, so that translation units
// built with different flags never share one instantiation. gemm_kernel_avx512.h: the AVX-512 one.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace captcha::engine {
namespace {

// C[R][16] (+)= A[R][k] . B[k][16], rows of A `lda` apart, of B `ldb`, of C `ldc`.
// GCC keeps `acc` in registers only when the row loops are unrolled: without the pragmas it
// spilled them to the stack at every step of k (2.7x slower, measured).
template <int R>
__attribute__((always_inline)) inline void kernel_rx16(const float* a, std::size_t lda, const float* b, int ldb, int k, float* c, int ldc,
                        bool accumulate) {
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b + p * ldb), b1 = _mm256_loadu_ps(b + p * ldb + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if (accumulate) {
      acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(c + r * ldc));
      acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(c + r * ldc + 8));
    }
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

// kernel_rx16 for `rows` (1 to 6) rows.
inline void kernel_rows_x16(int rows, const float* a, std::size_t lda, const float* b, int ldb, int k, float* c,
                            int ldc, bool accumulate) {
  switch (rows) {
    case 6: kernel_rx16<6>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    case 5: kernel_rx16<5>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    case 4: kernel_rx16<4>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    case 3: kernel_rx16<3>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    case 2: kernel_rx16<2>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    case 1: kernel_rx16<1>(a, lda, b, ldb, k, c, ldc, accumulate); break;
    default: break;
  }
}

}  // namespace
}  // namespace captcha::engine
