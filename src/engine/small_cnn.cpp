// Compiled with -mavx2 -mfma (see CMakeLists.txt); called only where small_cnn_supported() says
// the CPU has both.
#include "small_cnn.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "gemm_kernel.h"
#include "gemm_kernel_avx512.h"
#include "kernels.h"

namespace captcha::engine {

namespace {

constexpr int kMaxChannels = 512;
constexpr int kMaxWidth = 4096;  // PreprocessOptions' largest width
constexpr int kTileRows = 6;     // micro-kernel: 6 tiles x 16 output channels
constexpr int kChunkTiles = 12;  // tiles per chunk (a multiple of kTileRows), sized for L2

// Winograd F(4x4, 3x3) on the interpolation points 0, 1, -1, 2, -1/2 and infinity: a 6x6 input
// tile gives a 4x4 output tile, 36 products per tile instead of 144 (F(2x2, 3x3): 64). The
// points 2 and -1/2, instead of the usual 2 and -2, halve the float32 rounding error: on the
// bundled model's conv2 weights 7e-6 against 1.5e-5 (outputs up to 7; F(2x2, 3x3): 1.4e-6).
// At the logits that is lost in LibTorch's own rounding: 1.3e-5 from LibTorch's on real images
// with the bundled model, 1.1e-5 with F(2x2, 3x3) (tests/test_inference.cpp, limit 1e-4).
// Y = A^T [(G g G^T) . (B^T d B)] A, here with d and Y as (row, column) tiles.
constexpr int kIn = 6, kOut = 4, kPositions = kIn * kIn;
constexpr double kG[kIn][3] = {{1, 0, 0},
                               {-1.0 / 3, -1.0 / 3, -1.0 / 3},
                               {1.0 / 3, -1.0 / 3, 1.0 / 3},
                               {1.0 / 15, 2.0 / 15, 4.0 / 15},
                               {-16.0 / 15, 8.0 / 15, -4.0 / 15},
                               {0, 0, 1}};

// Eight channels at a time on AVX2, sixteen on AVX-512 (GCC's vector extension: arithmetic
// operators, FMA contraction).
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));
template <typename V>
struct Lanes;
template <>
struct Lanes<Vec8> {
  static constexpr int kCount = 8;
  typedef float Unaligned __attribute__((vector_size(32), aligned(4)));
};
template <>
struct Lanes<Vec16> {
  static constexpr int kCount = 16;
  typedef float Unaligned __attribute__((vector_size(64), aligned(4)));
};
template <typename V>
inline V load(const float* p) {
  return *reinterpret_cast<const typename Lanes<V>::Unaligned*>(p);
}
template <typename V>
inline void store(float* p, V v) {
  *reinterpret_cast<typename Lanes<V>::Unaligned*>(p) = v;
}
template <typename V>
inline V max_of(V a, V b) {
  return a > b ? a : b;
}
// a * b + c, fused (16 lanes: by contraction, as a call to an AVX-512 function from these
// untargeted helpers would change the ABI, which Clang refuses).
inline Vec8 fmadd(Vec8 a, Vec8 b, Vec8 c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec16 fmadd(Vec16 a, Vec16 b, Vec16 c) { return a * b + c; }

// y = B^T x for six values x (B^T's rows: the polynomials whose roots are all points but one).
template <typename V>
inline void input_transform(const V x[kIn], V y[kIn]) {
  y[0] = x[0] + 1.5f * x[1] - 2.0f * x[2] - 1.5f * x[3] + x[4];
  y[1] = -x[1] - 2.5f * x[2] - 0.5f * x[3] + x[4];
  y[2] = x[1] + 0.5f * x[2] - 2.5f * x[3] + x[4];
  y[3] = -0.5f * x[1] - x[2] + 0.5f * x[3] + x[4];
  y[4] = 2.0f * x[1] - x[2] - 2.0f * x[3] + x[4];
  y[5] = x[1] + 1.5f * x[2] - 2.0f * x[3] - 1.5f * x[4] + x[5];
}

// y = A^T x for six values x (A^T's columns: the powers 0-3 of each point).
template <typename V>
inline void output_transform(const V x[kIn], V y[kOut]) {
  y[0] = x[0] + x[1] + x[2] + x[3] + x[4];
  y[1] = x[1] - x[2] + 2.0f * x[3] - 0.5f * x[4];
  y[2] = x[1] + x[2] + 4.0f * x[3] + 0.25f * x[4];
  y[3] = x[1] - x[2] + 8.0f * x[3] - 0.125f * x[4] + x[5];
}

}  // namespace

bool small_cnn_supported(const std::vector<int>& channels) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || channels.size() < 2) return false;
  for (std::size_t i = 0; i < channels.size(); ++i)
    if (channels[i] <= 0 || channels[i] > kMaxChannels || channels[i] % (i == 0 ? 8 : 16) != 0) return false;
  return true;
}

SmallCnnWeights prepare_small_cnn(const std::vector<float>& conv1, const std::vector<float>& bias1, int c1) {
  SmallCnnWeights w;
  w.c1 = c1, w.bias1 = bias1;
  w.conv1.resize(9 * c1);
  for (int c = 0; c < c1; ++c)
    for (int tap = 0; tap < 9; ++tap) w.conv1[tap * c1 + c] = conv1[c * 9 + tap];
  return w;
}

WinogradConv prepare_winograd_conv(const std::vector<float>& weight, const std::vector<float>& bias, int in, int out,
                                   bool pool) {
  WinogradConv layer;
  layer.in = in, layer.out = out, layer.pool = pool, layer.bias = bias;
  // U = G g G^T, computed in double, an input channel at a time: the 36 positions' rows of
  // that channel, then copied to their places (kPositions streams 16 KB apart thrash the cache).
  layer.u.resize(static_cast<std::size_t>(kPositions) * in * out);
  std::vector<float> rows(static_cast<std::size_t>(kPositions) * out);
  for (int i = 0; i < in; ++i) {
    for (int o = 0; o < out; ++o) {
      const float* g = weight.data() + (static_cast<std::size_t>(o) * in + i) * 9;
      double gg[kIn][3];  // G g
      for (int r = 0; r < kIn; ++r)
        for (int col = 0; col < 3; ++col) gg[r][col] = kG[r][0] * g[col] + kG[r][1] * g[3 + col] + kG[r][2] * g[6 + col];
      for (int r = 0; r < kIn; ++r)
        for (int col = 0; col < kIn; ++col)
          rows[static_cast<std::size_t>(r * kIn + col) * out + o] =
              static_cast<float>(gg[r][0] * kG[col][0] + gg[r][1] * kG[col][1] + gg[r][2] * kG[col][2]);
    }
    for (int pos = 0; pos < kPositions; ++pos)
      std::memcpy(layer.u.data() + (static_cast<std::size_t>(pos) * in + i) * out, rows.data() + static_cast<std::size_t>(pos) * out,
                  sizeof(float) * out);
  }
  return layer;
}

void quantise_winograd(WinogradConv& layer) {
  layer.u_int8.clear();
  for (int pos = 0; pos < kPositions; ++pos)
    layer.u_int8.push_back(quantise_matrix(layer.u.data() + static_cast<std::size_t>(pos) * layer.in * layer.out, layer.out,
                                           layer.in, layer.out, /*wide=*/true));
  layer.u = {};
}

namespace {

// Pooled rows [first, last) of the n x h1 rows (image major), on the calling thread; `pooled`
// is n x h/2 x w/2 x c1 (channels last). V: the channels of one step.
template <typename V>
__attribute__((always_inline)) inline void conv1_rows_with(const SmallCnnWeights& weights, const float* images, int h,
                                                           int w, float* pooled, long first, long last) {
  constexpr int kLanes = Lanes<V>::kCount;
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
    for (int block = 0; block < c1; block += kLanes) {
      V k[9];
      for (int tap = 0; tap < 9; ++tap) k[tap] = load<V>(weights.conv1.data() + tap * c1 + block);
      const V bias = load<V>(weights.bias1.data() + block), zero = {};
      for (int px = 0; px < w1; ++px) {
        // The four 3x3 convolutions under the 2x2 pooling window, from the 4x4 patch at column 2px.
        V best = zero - 3.4e38f;
        for (int oy = 0; oy < 2; ++oy)
          for (int ox = 0; ox < 2; ++ox) {
            V acc = {};
            for (int a = 0; a < 3; ++a) {
              const float* r = rows[oy + a] + 2 * px + ox;
              acc = fmadd(zero + r[0], k[a * 3], acc);
              acc = fmadd(zero + r[1], k[a * 3 + 1], acc);
              acc = fmadd(zero + r[2], k[a * 3 + 2], acc);
            }
            best = max_of(best, acc);
          }
        store<V>(dst_row + static_cast<std::size_t>(px) * c1 + block, max_of(best + bias, zero));
      }
    }
  }
}

// Where a map's values lie: value (image, y, x, channel) at image * image + y * y + x * x +
// channel floats from its start.
struct MapLayout {
  std::size_t image, y, x;
};
MapLayout channels_last(int h, int w, int c) {
  return {static_cast<std::size_t>(h) * w * c, static_cast<std::size_t>(w) * c, static_cast<std::size_t>(c)};
}
// The dense layer's input rows: one per column, height major.
MapLayout columns_as_rows(int h, int w, int c) {
  return {static_cast<std::size_t>(h) * w * c, static_cast<std::size_t>(c), static_cast<std::size_t>(h) * c};
}

// A layer's output map size for an h x w input map.
int out_size(const WinogradConv& layer, int size) { return layer.pool ? size / 2 : size; }

// The output tiles of a layer on an h x w map: a 4x4 tile covers 2x2 pooled outputs where the
// layer pools, 4x4 outputs where it does not.
struct Tiling {
  int y, x;
  long per_image() const { return static_cast<long>(y) * x; }
};
Tiling tiling(const WinogradConv& layer, int h, int w) {
  if (layer.pool) return {(h / 2 + 1) / 2, (w / 2 + 1) / 2};
  return {(h + 3) / 4, (w + 3) / 4};
}

long chunk_count(const WinogradConv& layer, int n, int h, int w) {
  return (n * tiling(layer, h, w).per_image() + kChunkTiles - 1) / kChunkTiles;
}

// M = V U for each of the 36 positions: V 36 x kChunkTiles x c1, U 36 x c1 x c2, M 36 x
// kChunkTiles x c2; `count` tiles (rounded up to kTileRows, the rows beyond are zeros).
void winograd_products(const float* v, const float* u, int count, int c1, int c2, float* m) {
  for (int pos = 0; pos < kPositions; ++pos) {
    const float* vp = v + static_cast<std::size_t>(pos) * kChunkTiles * c1;
    const float* up = u + static_cast<std::size_t>(pos) * c1 * c2;
    float* mp = m + static_cast<std::size_t>(pos) * kChunkTiles * c2;
    for (int t = 0; t < count; t += kTileRows)
      for (int o = 0; o < c2; o += 16) kernel_rx16<kTileRows>(vp + t * c1, c1, up + o, c2, c1, mp + t * c2 + o, c2, false);
  }
}

// The same on AVX-512, 32 output channels at a time (called only where the dispatch chose the
// AVX-512 kernels).
CAPTCHA_AVX512_TARGET void winograd_products_avx512(const float* v, const float* u, int count, int c1, int c2, float* m) {
  for (int pos = 0; pos < kPositions; ++pos) {
    const float* vp = v + static_cast<std::size_t>(pos) * kChunkTiles * c1;
    const float* up = u + static_cast<std::size_t>(pos) * c1 * c2;
    float* mp = m + static_cast<std::size_t>(pos) * kChunkTiles * c2;
    for (int t = 0; t < count; t += kTileRows) {
      int o = 0;
      for (; o + 32 <= c2; o += 32)
        kernel_rx32<kTileRows>(vp + t * c1, c1, up + o, up + o + 16, c2, c1, mp + t * c2 + o, c2, false);
      for (; o < c2; o += 16) kernel_rx16<kTileRows>(vp + t * c1, c1, up + o, c2, c1, mp + t * c2 + o, c2, false);
    }
  }
}

// The same on the int8 path, in 16-bit integers: each position's rows of V quantised, then
// multiplied (8 bits lose too much here: the output transform multiplies the products' errors
// by up to 8 twice).
void int8_products(const WinogradConv& layer, const float* v, int count, float* m) {
  const int c1 = layer.in, c2 = layer.out, padded = layer.u_int8.front().padded_k;
  thread_local std::vector<float> scratch;
  scratch.resize(quantised_rows_floats(kChunkTiles, padded, /*wide=*/true));
  const QuantisedRows rows = quantised_rows_in(scratch.data(), kChunkTiles, padded, /*wide=*/true);
  for (int pos = 0; pos < kPositions; ++pos) {
    const QuantisedMatrix& u = layer.u_int8[pos];
    quantise_rows_wide(v + static_cast<std::size_t>(pos) * kChunkTiles * c1, c1, count, u, rows);
    int8_product(rows, count, u, nullptr, false, m + static_cast<std::size_t>(pos) * kChunkTiles * c2, c2);
  }
}

bool use_avx512() {
  static const bool avx512 = std::string(kernels_name()) == "avx512";
  return avx512;
}

// Chunks [first_chunk, last_chunk) of kChunkTiles output tiles of `layer` on `in` (n x h x w x
// in channels, channels last), written to `out` as `layout` says, on the calling thread. V: the
// channels the transforms take at a time.
template <typename V>
__attribute__((always_inline)) inline void winograd_chunks_with(const WinogradConv& layer, const float* in, int n, int h,
                                                                int w, float* out, MapLayout layout, long first_chunk,
                                                                long last_chunk) {
  constexpr int kLanes = Lanes<V>::kCount;
  const int c1 = layer.in, c2 = layer.out, out_h = out_size(layer, h), out_w = out_size(layer, w);
  const int scale = layer.pool ? 2 : 4;  // outputs per tile side
  const Tiling tiles = tiling(layer, h, w);
  const long total = n * tiles.per_image();
  static const float kZeros[kMaxChannels] = {};
  // Per thread: the transformed inputs V (36 x tiles x c1) and products M (36 x tiles x c2).
  thread_local std::vector<float> v, m;
  v.resize(static_cast<std::size_t>(kPositions) * kChunkTiles * c1);
  m.resize(static_cast<std::size_t>(kPositions) * kChunkTiles * c2);
  for (long chunk = first_chunk; chunk < last_chunk; ++chunk) {
    const long first = chunk * kChunkTiles;
    const int count = static_cast<int>(std::min<long>(kChunkTiles, total - first));
    // Input transform V = B^T d B of the 6x6 window at conv rows 4ty-1.., columns 4tx-1...
    for (int t = 0; t < kChunkTiles; ++t) {
      const float* d[kPositions];
      if (t < count) {
        const long tile = first + t;
        const int image = static_cast<int>(tile / tiles.per_image()), ty = static_cast<int>(tile / tiles.x % tiles.y),
                  tx = static_cast<int>(tile % tiles.x);
        for (int i = 0; i < kIn; ++i)
          for (int j = 0; j < kIn; ++j) {
            const int y = 4 * ty - 1 + i, x = 4 * tx - 1 + j;
            d[i * kIn + j] = (y >= 0 && y < h && x >= 0 && x < w)
                                 ? in + ((static_cast<std::size_t>(image) * h + y) * w + x) * c1
                                 : kZeros;
          }
      } else {
        for (auto& p : d) p = kZeros;  // padding rows for the 6-row micro-kernel
      }
      float* dst = v.data() + static_cast<std::size_t>(t) * c1;
      const std::size_t position_stride = static_cast<std::size_t>(kChunkTiles) * c1;
      for (int c = 0; c < c1; c += kLanes) {
        V r[kIn][kIn];  // B^T d, by columns
        for (int j = 0; j < kIn; ++j) {
          V column[kIn], transformed[kIn];
          for (int i = 0; i < kIn; ++i) column[i] = load<V>(d[i * kIn + j] + c);
          input_transform(column, transformed);
          for (int i = 0; i < kIn; ++i) r[i][j] = transformed[i];
        }
        for (int i = 0; i < kIn; ++i) {
          V row[kIn];
          input_transform(r[i], row);
          for (int j = 0; j < kIn; ++j) store<V>(dst + (i * kIn + j) * position_stride + c, row[j]);
        }
      }
    }
    // M = V U for each of the 36 positions.
    if (!layer.u_int8.empty()) int8_products(layer, v.data(), count, m.data());
    else if (use_avx512()) winograd_products_avx512(v.data(), layer.u.data(), count, c1, c2, m.data());
    else winograd_products(v.data(), layer.u.data(), count, c1, c2, m.data());
    // Output transform Y = A^T M A, then (2x2 max pool,) bias and ReLU of the outputs that
    // exist (the map's last tiles may overhang it; an odd last row or column has no pooling partner).
    for (int t = 0; t < count; ++t) {
      const long tile = first + t;
      const int image = static_cast<int>(tile / tiles.per_image()), ty = static_cast<int>(tile / tiles.x % tiles.y),
                tx = static_cast<int>(tile % tiles.x);
      const int rows = std::min(scale, out_h - scale * ty), columns = std::min(scale, out_w - scale * tx);
      const float* mt = m.data() + static_cast<std::size_t>(t) * c2;
      const std::size_t position_stride = static_cast<std::size_t>(kChunkTiles) * c2;
      float* tile_out = out + image * layout.image + static_cast<std::size_t>(scale * ty) * layout.y +
                        static_cast<std::size_t>(scale * tx) * layout.x;
      const V zero = {};
      for (int c = 0; c < c2; c += kLanes) {
        V s[kOut][kIn];  // A^T M, by columns
        for (int j = 0; j < kIn; ++j) {
          V column[kIn], transformed[kOut];
          for (int i = 0; i < kIn; ++i) column[i] = load<V>(mt + (i * kIn + j) * position_stride + c);
          output_transform(column, transformed);
          for (int i = 0; i < kOut; ++i) s[i][j] = transformed[i];
        }
        V y[kOut][kOut];
        for (int i = 0; i < kOut; ++i) output_transform(s[i], y[i]);
        const V bias = load<V>(layer.bias.data() + c);
        for (int a = 0; a < rows; ++a)
          for (int b = 0; b < columns; ++b) {
            const V value = layer.pool ? max_of(max_of(y[2 * a][2 * b], y[2 * a][2 * b + 1]),
                                                max_of(y[2 * a + 1][2 * b], y[2 * a + 1][2 * b + 1]))
                                       : y[a][b];
            store<V>(tile_out + a * layout.y + b * layout.x + c, max_of(value + bias, zero));
          }
      }
    }
  }
}

// winograd_chunks_with and conv1_rows_with eight channels at a time, or sixteen where the
// dispatch chose the AVX-512 kernels and the channel counts allow.
void winograd_chunks_avx2(const WinogradConv& layer, const float* in, int n, int h, int w, float* out, MapLayout layout,
                          long first_chunk, long last_chunk) {
  winograd_chunks_with<Vec8>(layer, in, n, h, w, out, layout, first_chunk, last_chunk);
}
CAPTCHA_AVX512_TARGET void winograd_chunks_avx512(const WinogradConv& layer, const float* in, int n, int h, int w,
                                                  float* out, MapLayout layout, long first_chunk, long last_chunk) {
  winograd_chunks_with<Vec16>(layer, in, n, h, w, out, layout, first_chunk, last_chunk);
}
void winograd_chunks(const WinogradConv& layer, const float* in, int n, int h, int w, float* out, MapLayout layout,
                     long first_chunk, long last_chunk) {
  if (use_avx512() && layer.in % 16 == 0 && layer.out % 16 == 0)
    winograd_chunks_avx512(layer, in, n, h, w, out, layout, first_chunk, last_chunk);
  else
    winograd_chunks_avx2(layer, in, n, h, w, out, layout, first_chunk, last_chunk);
}

void conv1_rows_avx2(const SmallCnnWeights& weights, const float* images, int h, int w, float* pooled, long first,
                     long last) {
  conv1_rows_with<Vec8>(weights, images, h, w, pooled, first, last);
}
CAPTCHA_AVX512_TARGET void conv1_rows_avx512(const SmallCnnWeights& weights, const float* images, int h, int w,
                                             float* pooled, long first, long last) {
  conv1_rows_with<Vec16>(weights, images, h, w, pooled, first, last);
}
void conv1_rows(const SmallCnnWeights& weights, const float* images, int h, int w, float* pooled, long first, long last) {
  if (use_avx512() && weights.c1 % 16 == 0) conv1_rows_avx512(weights, images, h, w, pooled, first, last);
  else conv1_rows_avx2(weights, images, h, w, pooled, first, last);
}

// The map sizes before each layer after the first (that after conv1's pooling, first).
struct MapSizes {
  std::vector<int> h, w;
  std::size_t largest_floats = 0;  // of the maps in front of a Winograd layer, per image
};
MapSizes map_sizes(const SmallCnnWeights& weights, int h, int w) {
  MapSizes sizes;
  int mh = h / 2, mw = w / 2, channels = weights.c1;
  for (const auto& layer : weights.convs) {
    sizes.h.push_back(mh);
    sizes.w.push_back(mw);
    sizes.largest_floats = std::max(sizes.largest_floats, static_cast<std::size_t>(mh) * mw * channels);
    mh = out_size(layer, mh), mw = out_size(layer, mw), channels = layer.out;
  }
  sizes.h.push_back(mh);
  sizes.w.push_back(mw);
  return sizes;
}

// The layers after conv1 on `n` images whose conv1 output is in `ping`; the last writes
// `features`, the others alternate between `pong` and `ping`. `parallel`: each layer's tile
// chunks split between the threads (else all on the calling thread).
void winograd_layers(const SmallCnnWeights& weights, const MapSizes& sizes, int n, float* ping, float* pong,
                     float* features, bool parallel) {
  for (std::size_t i = 0; i < weights.convs.size(); ++i) {
    const WinogradConv& layer = weights.convs[i];
    const int h = sizes.h[i], w = sizes.w[i];
    const bool last = i + 1 == weights.convs.size();
    float* out = last ? features : pong;
    const MapLayout layout = last ? columns_as_rows(sizes.h[i + 1], sizes.w[i + 1], layer.out)
                                  : channels_last(sizes.h[i + 1], sizes.w[i + 1], layer.out);
    const long chunks = chunk_count(layer, n, h, w);
    if (parallel) {
#pragma omp parallel for schedule(static)
      for (long chunk = 0; chunk < chunks; ++chunk) winograd_chunks(layer, ping, n, h, w, out, layout, chunk, chunk + 1);
    } else {
      winograd_chunks(layer, ping, n, h, w, out, layout, 0, chunks);
    }
    std::swap(ping, pong);
  }
}

}  // namespace

void small_cnn_output_size(const SmallCnnWeights& weights, int h, int w, int& out_h, int& out_w) {
  const MapSizes sizes = map_sizes(weights, h, w);
  out_h = sizes.h.back(), out_w = sizes.w.back();
}

std::size_t small_cnn_scratch_floats(const SmallCnnWeights& weights, int n, int h, int w) {
  return 2 * static_cast<std::size_t>(n) * map_sizes(weights, h, w).largest_floats;
}

void small_cnn_forward(const SmallCnnWeights& weights, const float* images, int n, int h, int w, float* scratch,
                       float* features) {
  const MapSizes sizes = map_sizes(weights, h, w);
  const int threads = omp_get_max_threads();
  if (n < 2 * threads) {
    // Few: every thread on each layer in turn.
    float* ping = scratch;
    float* pong = scratch + static_cast<std::size_t>(n) * sizes.largest_floats;
    const long rows = static_cast<long>(n) * (h / 2);
#pragma omp parallel for schedule(static)
    for (long row = 0; row < rows; ++row) conv1_rows(weights, images, h, w, ping, row, row + 1);
    winograd_layers(weights, sizes, n, ping, pong, features, /*parallel=*/true);
    return;
  }
  // Many: one image per thread at a time, so that its maps stay in the cache between layers.
  const std::size_t image_in = static_cast<std::size_t>(h) * w;
  const std::size_t image_features = static_cast<std::size_t>(sizes.h.back()) * sizes.w.back() * weights.out_channels();
#pragma omp parallel for schedule(static)
  for (int image = 0; image < n; ++image) {
    thread_local std::vector<float> maps;
    maps.resize(2 * sizes.largest_floats);
    float* image_features_out = features + image * image_features;
    conv1_rows(weights, images + image * image_in, h, w, maps.data(), 0, h / 2);
    winograd_layers(weights, sizes, 1, maps.data(), maps.data() + sizes.largest_floats, image_features_out,
                    /*parallel=*/false);
  }
}

}  // namespace captcha::engine
