#include "common/model/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

// One body, compiled three times; the dynamic loader picks the best for the CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DS_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DS_MULTIVERSION
#endif

namespace deepsearch::cpu_kernels {

DS_MULTIVERSION
void AdamW(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s) {
  // Locals, not loads through `s`: the stores to m, v and p could alias it otherwise.
  const float decay = s.decay, beta1 = s.beta1, beta2 = s.beta2, step = s.step, eps = s.eps,
              a1 = s.one_minus_beta1, a2 = s.one_minus_beta2, inv_bias2 = 1.0f / s.bias2_sqrt;
  // Each line rounds as the ATen op it replaces does (mul_; add_ with alpha, an FMA; addcmul_;
  // division by a scalar, a multiplication by its reciprocal; addcdiv_), so the two paths
  // agree to the last bit or two.
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = std::fma(gi, a1, m[i] * beta1);
    const float vi = v[i] * beta2 + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_bias2 + eps;
    p[i] = p[i] * decay + step * mi / denom;
  }
}

DS_MULTIVERSION
void RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t dim,
             float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * dim;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < dim; ++i) sum += row[i] * row[i];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    float* o = out + r * dim;
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) o[i] = weight[i] * (row[i] * inv);
  }
}

DS_MULTIVERSION
void Rope(float* x, int64_t rows, int64_t stride, int64_t heads, int64_t head_dim, const float* cos,
          const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + r * head_dim;
    const float* s = sin + r * head_dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + r * stride + h * head_dim;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c[i] - x2 * s[i];
        v[i + half] = x2 * c[i + half] + x1 * s[i + half];
      }
    }
  }
}

void WriteKv(const float* src, int64_t stride, int64_t key_offset, int64_t value_offset,
             const int64_t* rows, const int32_t* blocks, const int64_t* lanes, int64_t count,
             int64_t kv_heads, int64_t head_dim, float* keys, float* values) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(head_dim);
  for (int64_t i = 0; i < count; ++i) {
    const float* row = src + rows[i] * stride;
    for (int64_t g = 0; g < kv_heads; ++g) {
      const int64_t head = static_cast<int64_t>(blocks[i]) * kv_heads + g;
      const float* k = row + key_offset + g * head_dim;
      float* tile = keys + head * head_dim * kBlock;
      for (int64_t d = 0; d < head_dim; ++d) tile[d * kBlock + lanes[i]] = k[d];
      std::memcpy(values + (head * kBlock + lanes[i]) * head_dim, row + value_offset + g * head_dim,
                  bytes);
    }
  }
}

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

// exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 in two parts (Cody-Waite), p the
// degree-6 Taylor polynomial of exp on [-ln2/2, ln2/2]; 2^n assembled in the exponent bits.
// Branch-free, so `omp simd` loops over it vectorise.
[[gnu::always_inline]] inline float ExpInline(float x) {
  const bool underflow = x < -87.33654f;
  x = std::min(std::max(x, -87.33654f), 88.72283f);
  // Round to nearest by the 1.5 * 2^23 trick (vectorises without rounding-mode intrinsics).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return underflow ? 0.0f : p * scale;
}

// In place: softmax over row[0, limit), zeros after it up to `width`. Fixed order for a given
// limit (max, exp element-wise, a left-to-right vector sum), whatever `width` is.
[[gnu::always_inline]] inline void SoftmaxRow(float* row, int64_t limit, int64_t width) {
  float max = kMinusInf;
#pragma omp simd reduction(max : max)
  for (int64_t t = 0; t < limit; ++t) max = std::max(max, row[t]);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t t = 0; t < limit; ++t) {
    row[t] = ExpInline(row[t] - max);
    sum += row[t];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t t = 0; t < limit; ++t) row[t] *= inv;
  std::fill(row + limit, row + width, 0.0f);
}

// Scores of NR query rows against one key block: acc[r][lane] = <q_r, key lane>. Inlined into
// the multiversioned caller, so it is compiled for each of its targets; the 16-lane loops
// become one AVX-512 vector (two AVX2 ones) and acc stays in registers.
template <int NR>
[[gnu::always_inline]] inline void ScoreTile(const float* const* q, const float* tile, int64_t d,
                                             float (&acc)[NR][kBlock]) {
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma omp simd
    for (int lane = 0; lane < kBlock; ++lane) acc[r][lane] = 0.0f;
  }
  for (int64_t i = 0; i < d; ++i) {
    const float* k = tile + i * kBlock;
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const float qv = q[r][i];
#pragma omp simd
      for (int lane = 0; lane < kBlock; ++lane) acc[r][lane] += qv * k[lane];
    }
  }
}

// NR query rows of one KV group against its keys, block by block.
template <int NR>
[[gnu::always_inline]] inline void ScoreRows(const float* const* q, const float* keys,
                                             const int32_t* table, int64_t tiles,
                                             int64_t head_stride, int64_t group_offset, int64_t d,
                                             const int64_t* limit, float scale, int64_t keys_dim,
                                             float* out) {
  for (int64_t tile = 0; tile < tiles; ++tile) {
    float acc[NR][kBlock];
    ScoreTile<NR>(q, keys + static_cast<int64_t>(table[tile]) * head_stride + group_offset, d, acc);
    const int64_t t0 = tile * kBlock;
    const int64_t lanes = std::min<int64_t>(kBlock, keys_dim - t0);
    for (int r = 0; r < NR; ++r) {
      float* o = out + r * keys_dim + t0;
      for (int64_t lane = 0; lane < lanes; ++lane)
        o[lane] = t0 + lane < limit[r] ? acc[r][lane] * scale : kMinusInf;
    }
  }
}

// Weighted sum of value rows for NR query rows with D-dimensional heads, accumulators in
// registers. `keys` positions; position t is row t % 16 of block table[t / 16].
template <int D, int NR>
[[gnu::always_inline]] inline void ValueRows(const float* const* p, const float* values,
                                             const int32_t* table, int64_t head_stride,
                                             int64_t group_offset, int64_t keys,
                                             float* const* out) {
  float acc[NR][D];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
#pragma omp simd
    for (int i = 0; i < D; ++i) acc[r][i] = 0.0f;
  }
  for (int64_t t0 = 0; t0 < keys; t0 += kBlock) {
    const float* block =
        values + static_cast<int64_t>(table[t0 / kBlock]) * head_stride + group_offset;
    const int64_t rows = std::min<int64_t>(kBlock, keys - t0);
    for (int64_t j = 0; j < rows; ++j) {
      const float* vr = block + j * D;
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        const float w = p[r][t0 + j];
#pragma omp simd
        for (int i = 0; i < D; ++i) acc[r][i] += w * vr[i];
      }
    }
  }
  for (int r = 0; r < NR; ++r) std::memcpy(out[r], acc[r], sizeof(float) * D);
}

// Any head size: one row at a time, accumulating in the output.
void ValueRowGeneric(const float* p, const float* values, const int32_t* table, int64_t head_stride,
                     int64_t group_offset, int64_t keys, int64_t d, float* out) {
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(d));
  for (int64_t t = 0; t < keys; ++t) {
    const float w = p[t];
    const float* vr = values + static_cast<int64_t>(table[t / kBlock]) * head_stride +
                      group_offset + (t % kBlock) * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) out[i] += w * vr[i];
  }
}

}  // namespace

float Exp(float x) { return ExpInline(x); }

DS_MULTIVERSION
void AttentionProbs(const AttentionShape& s, const float* q, const float* keys,
                    const int32_t* tables, const int64_t* limits, float scale, float* scores) {
  const int64_t d = s.head_dim, rows = s.n_rep * s.steps;
  const int64_t head_stride = s.kv_heads * d * kBlock;  // floats per block
  std::vector<const float*> q_rows(static_cast<size_t>(rows));
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t* row_limit = limits + b * rows;
    const int32_t* table = tables + b * s.table_width;
    int64_t max_limit = 0;
    for (int64_t r = 0; r < rows; ++r) max_limit = std::max(max_limit, row_limit[r]);
    const int64_t tiles = (max_limit + kBlock - 1) / kBlock;
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t rep = r / s.steps, step = r % s.steps;
        q_rows[static_cast<size_t>(r)] =
            q + (b * s.steps + step) * s.q_stride + (g * s.n_rep + rep) * d;
      }
      const int64_t group_offset = g * d * kBlock;
      float* out = scores + ((b * s.kv_heads + g) * rows) * s.keys;
      int64_t r = 0;
      for (; r + 8 <= rows; r += 8) {
        ScoreRows<8>(q_rows.data() + r, keys, table, tiles, head_stride, group_offset, d,
                     row_limit + r, scale, s.keys, out + r * s.keys);
      }
      switch (rows - r) {
#define DS_SCORE_CASE(n)                                                              \
  case n:                                                                             \
    ScoreRows<n>(q_rows.data() + r, keys, table, tiles, head_stride, group_offset, d, \
                 row_limit + r, scale, s.keys, out + r * s.keys);                     \
    break;
        DS_SCORE_CASE(1)
        DS_SCORE_CASE(2)
        DS_SCORE_CASE(3)
        DS_SCORE_CASE(4)
        DS_SCORE_CASE(5)
        DS_SCORE_CASE(6)
        DS_SCORE_CASE(7)
#undef DS_SCORE_CASE
        default:
          break;
      }
      for (int64_t row = 0; row < rows; ++row)
        SoftmaxRow(out + row * s.keys, row_limit[row], s.keys);
    }
  }
}

DS_MULTIVERSION
void AttentionValues(const AttentionShape& s, const float* probs, const float* values,
                     const int32_t* tables, const int64_t* limits, float* out) {
  const int64_t d = s.head_dim, rows = s.n_rep * s.steps;
  const int64_t head_stride = s.kv_heads * kBlock * d;  // floats per block
  std::vector<const float*> p_rows(static_cast<size_t>(rows));
  std::vector<float*> out_rows(static_cast<size_t>(rows));
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t* row_limit = limits + b * rows;
    const int32_t* table = tables + b * s.table_width;
    int64_t max_limit = 0;
    for (int64_t r = 0; r < rows; ++r) max_limit = std::max(max_limit, row_limit[r]);
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t rep = r / s.steps, step = r % s.steps;
        out_rows[static_cast<size_t>(r)] =
            out + (b * s.steps + step) * s.out_stride + (g * s.n_rep + rep) * d;
        p_rows[static_cast<size_t>(r)] = probs + ((b * s.kv_heads + g) * rows + r) * s.keys;
      }
      const int64_t group_offset = g * kBlock * d;
      const float* const* pr = p_rows.data();
      float* const* orow = out_rows.data();
      int64_t r = 0;
      if (d == 64) {  // 4 rows x 64 floats = 16 vector accumulators
        for (; r + 4 <= rows; r += 4)
          ValueRows<64, 4>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        if (rows - r == 3)
          ValueRows<64, 3>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        if (rows - r == 2)
          ValueRows<64, 2>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        if (rows - r == 1)
          ValueRows<64, 1>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        r = rows;
      } else if (d == 128) {  // 2 rows x 128 floats
        for (; r + 2 <= rows; r += 2) {
          ValueRows<128, 2>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        }
        if (rows - r == 1)
          ValueRows<128, 1>(pr + r, values, table, head_stride, group_offset, max_limit, orow + r);
        r = rows;
      }
      for (; r < rows; ++r)
        ValueRowGeneric(pr[r], values, table, head_stride, group_offset, max_limit, d, orow[r]);
    }
  }
}

}  // namespace deepsearch::cpu_kernels
