// Compiled with -mavx2 -mfma (see CMakeLists.txt); called only where small_cnn_supported() says
// the CPU has both.
#include "small_cnn.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "gemm_kernel.h"

namespace captcha::engine {

namespace {

constexpr int kMaxChannels = 512;
constexpr int kMaxWidth = 4096;  // PreprocessOptions' largest width
constexpr int kTileRows = 6;     // micro-kernel: 6 tiles x 16 output channels
constexpr int kChunkTiles = 24;  // tiles per chunk (a multiple of kTileRows), sized for L2

}  // namespace

bool small_cnn_supported(int c1, int c2) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && c1 > 0 && c1 <= kMaxChannels &&
         c1 % 8 == 0 && c2 > 0 && c2 <= kMaxChannels && c2 % 16 == 0;
}

SmallCnnWeights prepare_small_cnn(const std::vector<float>& conv1, const std::vector<float>& bias1,
                                  const std::vector<float>& conv2, const std::vector<float>& bias2, int c1, int c2) {
  SmallCnnWeights w;
  w.c1 = c1, w.c2 = c2, w.bias1 = bias1, w.bias2 = bias2;
  w.conv1.resize(9 * c1);
  for (int c = 0; c < c1; ++c)
    for (int tap = 0; tap < 9; ++tap) w.conv1[tap * c1 + c] = conv1[c * 9 + tap];
  // U = G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  w.winograd.resize(16ull * c1 * c2);
  for (int o = 0; o < c2; ++o)
    for (int i = 0; i < c1; ++i) {
      const float* g = conv2.data() + (static_cast<std::size_t>(o) * c1 + i) * 9;
      double gg[4][3];  // G g
      for (int r = 0; r < 4; ++r)
        for (int col = 0; col < 3; ++col) gg[r][col] = G[r][0] * g[col] + G[r][1] * g[3 + col] + G[r][2] * g[6 + col];
      for (int r = 0; r < 4; ++r)
        for (int col = 0; col < 4; ++col) {
          const double u = gg[r][0] * G[col][0] + gg[r][1] * G[col][1] + gg[r][2] * G[col][2];
          w.winograd[(static_cast<std::size_t>(r * 4 + col) * c1 + i) * c2 + o] = static_cast<float>(u);
        }
    }
  return w;
}

namespace {

// Pooled rows [first, last) of the n x h1 rows (image major), on the calling thread.
void conv1_rows(const SmallCnnWeights& weights, const float* images, int h, int w, float* pooled, long first, long last) {
  const int c1 = weights.c1, h1 = h / 2, w1 = w / 2;
  for (long index = first; index < last; ++index) {
    const int image = static_cast<int>(index / h1), py = static_cast<int>(index % h1);
    const float* src = images + static_cast<std::size_t>(image) * h * w;
    // Input rows 2py-1 .. 2py+2, zero padded left and right by one column (and above or
    // below at the image's edges).
    float rows[4][kMaxWidth + 2];
    for (int i = 0; i < 4; ++i) {
      const int y = 2 * py - 1 + i;
      rows[i][0] = rows[i][w + 1] = 0.0f;
      if (y >= 0 && y < h) std::memcpy(rows[i] + 1, src + static_cast<std::size_t>(y) * w, sizeof(float) * w);
      else std::memset(rows[i] + 1, 0, sizeof(float) * w);
    }
    float* dst_row = pooled + (static_cast<std::size_t>(image) * h1 + py) * w1 * c1;
    for (int block = 0; block < c1; block += 8) {
      __m256 k[9];
      for (int tap = 0; tap < 9; ++tap) k[tap] = _mm256_loadu_ps(weights.conv1.data() + tap * c1 + block);
      const __m256 bias = _mm256_loadu_ps(weights.bias1.data() + block), zero = _mm256_setzero_ps();
      for (int px = 0; px < w1; ++px) {
        // The four 3x3 convolutions under the 2x2 pooling window, from the 4x4 patch at column 2px.
        __m256 best = _mm256_set1_ps(-3.4e38f);
        for (int oy = 0; oy < 2; ++oy)
          for (int ox = 0; ox < 2; ++ox) {
            __m256 acc = _mm256_setzero_ps();
            for (int a = 0; a < 3; ++a) {
              const float* r = rows[oy + a] + 2 * px + ox;
              acc = _mm256_fmadd_ps(_mm256_broadcast_ss(r), k[a * 3], acc);
              acc = _mm256_fmadd_ps(_mm256_broadcast_ss(r + 1), k[a * 3 + 1], acc);
              acc = _mm256_fmadd_ps(_mm256_broadcast_ss(r + 2), k[a * 3 + 2], acc);
            }
            best = _mm256_max_ps(best, acc);
          }
        _mm256_storeu_ps(dst_row + static_cast<std::size_t>(px) * c1 + block, _mm256_max_ps(_mm256_add_ps(best, bias), zero));
      }
    }
  }
}

// Output tile `tile` of n x h2 x w2 (image major, then row, then column).
struct TilePosition {
  int image, ty, tx;
};
TilePosition tile_position(long tile, int h2, int w2) {
  return {static_cast<int>(tile / (static_cast<long>(h2) * w2)), static_cast<int>(tile / w2 % h2), static_cast<int>(tile % w2)};
}

long conv2_chunk_count(int n, int h1, int w1) {
  return (static_cast<long>(n) * (h1 / 2) * (w1 / 2) + kChunkTiles - 1) / kChunkTiles;
}

// Chunks [first_chunk, last_chunk) of kChunkTiles output tiles, on the calling thread.
void conv2_chunks(const SmallCnnWeights& weights, const float* pooled, int n, int h1, int w1, float* features,
                  long first_chunk, long last_chunk) {
  const int c1 = weights.c1, c2 = weights.c2, h2 = h1 / 2, w2 = w1 / 2;
  const long tiles = static_cast<long>(n) * h2 * w2;
  static const float kZeros[kMaxChannels] = {};
  // Per thread: the transformed inputs V (16 x tiles x c1) and products M (16 x tiles x c2).
  thread_local std::vector<float> v, m;
  v.resize(16ull * kChunkTiles * c1);
  m.resize(16ull * kChunkTiles * c2);
  for (long chunk = first_chunk; chunk < last_chunk; ++chunk) {
    const long first = chunk * kChunkTiles;
    const int count = static_cast<int>(std::min<long>(kChunkTiles, tiles - first));
    // Input transform V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
    for (int t = 0; t < kChunkTiles; ++t) {
      const float* d[16];
      if (t < count) {
        const auto [image, ty, tx] = tile_position(first + t, h2, w2);
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) {
            const int y = 2 * ty - 1 + i, x = 2 * tx - 1 + j;
            d[i * 4 + j] = (y >= 0 && y < h1 && x >= 0 && x < w1)
                               ? pooled + ((static_cast<std::size_t>(image) * h1 + y) * w1 + x) * c1
                               : kZeros;
          }
      } else {
        for (auto& p : d) p = kZeros;  // padding rows for the 6-row micro-kernel
      }
      float* out = v.data() + static_cast<std::size_t>(t) * c1;
      const std::size_t position_stride = static_cast<std::size_t>(kChunkTiles) * c1;
#pragma omp simd
      for (int c = 0; c < c1; ++c) {
        float r[4][4];  // B^T d
        for (int j = 0; j < 4; ++j) {
          const float d0 = d[j][c], d1 = d[4 + j][c], d2 = d[8 + j][c], d3 = d[12 + j][c];
          r[0][j] = d0 - d2, r[1][j] = d1 + d2, r[2][j] = d2 - d1, r[3][j] = d1 - d3;
        }
        for (int i = 0; i < 4; ++i) {
          out[(i * 4 + 0) * position_stride + c] = r[i][0] - r[i][2];
          out[(i * 4 + 1) * position_stride + c] = r[i][1] + r[i][2];
          out[(i * 4 + 2) * position_stride + c] = r[i][2] - r[i][1];
          out[(i * 4 + 3) * position_stride + c] = r[i][1] - r[i][3];
        }
      }
    }
    // M = V U for each of the 16 positions.
    for (int pos = 0; pos < 16; ++pos) {
      const float* vp = v.data() + static_cast<std::size_t>(pos) * kChunkTiles * c1;
      const float* up = weights.winograd.data() + static_cast<std::size_t>(pos) * c1 * c2;
      float* mp = m.data() + static_cast<std::size_t>(pos) * kChunkTiles * c2;
      for (int t = 0; t < count; t += kTileRows)
        for (int o = 0; o < c2; o += 16) kernel_rx16<kTileRows>(vp + t * c1, c1, up + o, c2, c1, mp + t * c2 + o, c2, false);
    }
    // Output transform Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1], then pool, bias, ReLU.
    for (int t = 0; t < count; ++t) {
      const auto [image, ty, tx] = tile_position(first + t, h2, w2);
      float* dst = features + ((static_cast<std::size_t>(image) * w2 + tx) * h2 + ty) * c2;
      const float* mt = m.data() + static_cast<std::size_t>(t) * c2;
      const std::size_t position_stride = static_cast<std::size_t>(kChunkTiles) * c2;
#pragma omp simd
      for (int c = 0; c < c2; ++c) {
        float s[2][4];  // A^T M
        for (int j = 0; j < 4; ++j) {
          const float m0 = mt[j * position_stride + c], m1 = mt[(4 + j) * position_stride + c];
          const float m2 = mt[(8 + j) * position_stride + c], m3 = mt[(12 + j) * position_stride + c];
          s[0][j] = m0 + m1 + m2, s[1][j] = m1 - m2 - m3;
        }
        const float y00 = s[0][0] + s[0][1] + s[0][2], y01 = s[0][1] - s[0][2] - s[0][3];
        const float y10 = s[1][0] + s[1][1] + s[1][2], y11 = s[1][1] - s[1][2] - s[1][3];
        dst[c] = std::max(std::max(std::max(y00, y01), std::max(y10, y11)) + weights.bias2[c], 0.0f);
      }
    }
  }
}

// Every thread on each image in turn: pooled rows, then output-tile chunks, split between them.
void conv1_pool_relu(const SmallCnnWeights& weights, const float* images, int n, int h, int w, float* pooled) {
  const long rows = static_cast<long>(n) * (h / 2);
#pragma omp parallel for schedule(static)
  for (long row = 0; row < rows; ++row) conv1_rows(weights, images, h, w, pooled, row, row + 1);
}

void conv2_pool_relu(const SmallCnnWeights& weights, const float* pooled, int n, int h1, int w1, float* features) {
  const long chunks = conv2_chunk_count(n, h1, w1);
#pragma omp parallel for schedule(static)
  for (long chunk = 0; chunk < chunks; ++chunk) conv2_chunks(weights, pooled, n, h1, w1, features, chunk, chunk + 1);
}

}  // namespace

void small_cnn_forward(const SmallCnnWeights& weights, const float* images, int n, int h, int w, float* pooled,
                       float* features) {
  const int h1 = h / 2, w1 = w / 2, threads = omp_get_max_threads();
  if (n < 2 * threads) {
    conv1_pool_relu(weights, images, n, h, w, pooled);
    conv2_pool_relu(weights, pooled, n, h1, w1, features);
    return;
  }
  // Many: one image per thread at a time, so that its pooled activations stay in the cache
  // between the two convolutions.
  const std::size_t image_in = static_cast<std::size_t>(h) * w, image_pooled = static_cast<std::size_t>(h1) * w1 * weights.c1;
  const std::size_t image_features = static_cast<std::size_t>(h1 / 2) * (w1 / 2) * weights.c2;
#pragma omp parallel for schedule(static)
  for (int image = 0; image < n; ++image) {
    float* p = pooled + image * image_pooled;
    conv1_rows(weights, images + image * image_in, h, w, p, 0, h1);
    conv2_chunks(weights, p, 1, h1, w1, features + image * image_features, 0, conv2_chunk_count(1, h1, w1));
  }
}

}  // namespace captcha::engine
