// The int8 product on AVX-512 VNNI (see engine::int8_product), used only where the CPU has it.
// A register block of up to 6 rows x 4 panels (64 columns): each group of 4 bytes of a row,
// broadcast, meets 4 panels of 16 columns in one vpdpbusd each, 64 multiply-adds an
// instruction; the 32-bit sums are corrected for the rows' zero points and scaled at the end.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace captcha::engine::vnni {

namespace {

// Rows of `a` per chunk: a chunk's quantised rows (96 x 768 bytes at most in the bundled model)
// stay in L2 while each block of panels is read from L1.
constexpr int kChunkRows = 96;

// R rows x N panels of c; kWide: 16-bit values (b.wide), whose zero points are all 0.
template <int R, int N, bool kWide>
inline void block(const QuantisedRows& a, const QuantisedMatrix& b, int panel, const float* bias, bool accumulate, float* c,
                  std::size_t ldc, bool relu) {
  const int groups = b.padded_k / b.group_rows();
  const std::size_t panel_bytes = static_cast<std::size_t>(groups) * 64;
  const std::int8_t* p = b.packed.data() + panel * panel_bytes;
  __m512i acc[R][N];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int n = 0; n < N; ++n) acc[r][n] = _mm512_setzero_si512();
  for (int g = 0; g < groups; ++g) {
    __m512i w[N];
#pragma GCC unroll 4
    for (int n = 0; n < N; ++n) w[n] = _mm512_loadu_si512(p + n * panel_bytes + 64 * g);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      std::int32_t four;
      std::memcpy(&four, a.values + r * a.stride + 4 * g, sizeof four);
      const __m512i x = _mm512_set1_epi32(four);
      if constexpr (kWide) {
#pragma GCC unroll 4
        for (int n = 0; n < N; ++n) acc[r][n] = _mm512_dpwssd_epi32(acc[r][n], x, w[n]);
      } else {
#pragma GCC unroll 4
        for (int n = 0; n < N; ++n) acc[r][n] = _mm512_dpbusd_epi32(acc[r][n], x, w[n]);
      }
    }
  }
  // The sums leave the registers here, so that the compiler keeps them in registers above (with
  // the loop below reading them as an array, GCC 12 also stores them at every step).
  alignas(64) std::int32_t sums_of[R][N][16];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int n = 0; n < N; ++n) _mm512_store_si512(sums_of[r][n], acc[r][n]);
  for (int n = 0; n < N; ++n) {
    const int j = (panel + n) * 16;
    const int count = std::min(16, b.cols - j);
    const __mmask16 mask = count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
    const __m512 scales = _mm512_loadu_ps(b.scales.data() + j);
    [[maybe_unused]] const __m512i sums = _mm512_loadu_si512(b.sums.data() + j);
    const __m512 offset = bias ? _mm512_maskz_loadu_ps(mask, bias + j) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) {
      __m512i exact = _mm512_load_si512(sums_of[r][n]);
      if constexpr (!kWide) {
        const __m512i zero = _mm512_set1_epi32(static_cast<std::int32_t>(a.zeros[r * a.meta_stride]));
        exact = _mm512_sub_epi32(exact, _mm512_mullo_epi32(zero, sums));
      }
      const __m512 value = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), _mm512_mul_ps(_mm512_set1_ps(a.scales[r * a.meta_stride]), scales));
      float* out = c + r * ldc + j;
      const __m512 base = accumulate ? _mm512_maskz_loadu_ps(mask, out) : offset;
      const __m512 sum = _mm512_add_ps(base, value);
      _mm512_mask_storeu_ps(out, mask, relu ? _mm512_max_ps(sum, _mm512_setzero_ps()) : sum);
    }
  }
}

template <int N, bool kWide>
void rows_block(int rows, const QuantisedRows& a, const QuantisedMatrix& b, int panel, const float* bias, bool accumulate,
                float* c, std::size_t ldc, bool relu) {
  switch (rows) {
    case 6: return block<6, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    case 5: return block<5, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    case 4: return block<4, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    case 3: return block<3, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    case 2: return block<2, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    case 1: return block<1, N, kWide>(a, b, panel, bias, accumulate, c, ldc, relu);
    default: return;
  }
}

template <bool kWide>
void panels_block(int panels, int rows, const QuantisedRows& a, const QuantisedMatrix& b, int panel, const float* bias,
                  bool accumulate, float* c, std::size_t ldc, bool relu) {
  switch (panels) {
    case 4: return rows_block<4, kWide>(rows, a, b, panel, bias, accumulate, c, ldc, relu);
    case 3: return rows_block<3, kWide>(rows, a, b, panel, bias, accumulate, c, ldc, relu);
    case 2: return rows_block<2, kWide>(rows, a, b, panel, bias, accumulate, c, ldc, relu);
    default: return rows_block<1, kWide>(rows, a, b, panel, bias, accumulate, c, ldc, relu);
  }
}

}  // namespace

void quantise_rows(const float* x, std::size_t ldx, int rows, int k, int padded_k, const QuantisedRows& out) {
  const auto tail = [](int count) { return static_cast<__mmask16>(count >= 16 ? 0xFFFF : (1u << count) - 1); };
  for (int r = 0; r < rows; ++r) {
    const float* v = x + static_cast<std::size_t>(r) * ldx;
    __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
    for (int i = 0; i < k; i += 16) {
      const __m512 a = _mm512_maskz_loadu_ps(tail(k - i), v + i);  // zeros beyond k change neither
      lo = _mm512_min_ps(lo, a);
      hi = _mm512_max_ps(hi, a);
    }
    const float low = _mm512_reduce_min_ps(lo), range = _mm512_reduce_max_ps(hi) - low;
    const float inverse = range > 0.0f ? 255.0f / range : 0.0f;
    const float zero = std::floor(-low * inverse + 0.5f);
    const __m512 scale = _mm512_set1_ps(inverse), offset = _mm512_set1_ps(zero), top = _mm512_set1_ps(255.0f),
                 half = _mm512_set1_ps(0.5f);
    std::uint8_t* q = out.values + static_cast<std::size_t>(r) * out.stride;
    for (int i = 0; i < k; i += 16) {
      const __mmask16 mask = tail(k - i);
      const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, v + i), scale, offset),
                                                   _mm512_setzero_ps()), top);
      _mm512_mask_cvtusepi32_storeu_epi8(q + i, mask, _mm512_cvttps_epi32(_mm512_add_ps(t, half)));
    }
    for (int i = k; i < padded_k; ++i) q[i] = static_cast<std::uint8_t>(zero);
    out.scales[r * out.meta_stride] = range > 0.0f ? range / 255.0f : 1.0f;
    out.zeros[r * out.meta_stride] = zero;
  }
}

void quantise_rows_wide(const float* x, std::size_t ldx, int rows, const QuantisedMatrix& b, const QuantisedRows& out) {
  const auto tail = [](int count) { return static_cast<__mmask16>(count >= 16 ? 0xFFFF : (1u << count) - 1); };
  const __m512 magnitude = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int r = 0; r < rows; ++r) {
    const float* v = x + static_cast<std::size_t>(r) * ldx;
    __m512 hi = _mm512_setzero_ps();
    for (int i = 0; i < b.k; i += 16) hi = _mm512_max_ps(hi, _mm512_and_ps(_mm512_maskz_loadu_ps(tail(b.k - i), v + i), magnitude));
    const float largest = _mm512_reduce_max_ps(hi);
    const __m512 scale = _mm512_set1_ps(largest > 0.0f ? static_cast<float>(b.limit) / largest : 0.0f);
    auto* q = reinterpret_cast<std::int16_t*>(out.values + static_cast<std::size_t>(r) * out.stride);
    for (int i = 0; i < b.k; i += 16) {
      const __mmask16 mask = tail(b.k - i);
      _mm512_mask_cvtsepi32_storeu_epi16(q + i, mask, _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, v + i), scale)));
    }
    for (int i = b.k; i < b.padded_k; ++i) q[i] = 0;
    out.scales[r * out.meta_stride] = largest > 0.0f ? largest / static_cast<float>(b.limit) : 1.0f;
    out.zeros[r * out.meta_stride] = 0.0f;
  }
}

void int8_product(const QuantisedRows& a, int rows, const QuantisedMatrix& b, const float* bias, bool accumulate, float* c,
                  std::size_t ldc, bool relu) {
  const int panels = b.padded_cols / 16;
  for (int r0 = 0; r0 < rows; r0 += kChunkRows) {
    const int chunk_end = std::min(rows, r0 + kChunkRows);
    for (int p = 0; p < panels; p += 4) {
      const int n = std::min(4, panels - p);
      for (int r = r0; r < chunk_end; r += 6) {
        const int count = std::min(6, chunk_end - r);
        const QuantisedRows x = a.row(r);
        float* out = c + static_cast<std::size_t>(r) * ldc;
        if (b.wide) panels_block<true>(n, count, x, b, p, bias, accumulate, out, ldc, relu);
        else panels_block<false>(n, count, x, b, p, bias, accumulate, out, ldc, relu);
      }
    }
  }
}

}  // namespace captcha::engine::vnni
