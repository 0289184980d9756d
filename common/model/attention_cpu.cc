#include "common/model/attention_cpu.h"

#include <algorithm>
#include <cstring>
#include <limits>

// One body, compiled three times; the dynamic loader picks the best for the CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DS_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DS_MULTIVERSION
#endif

namespace deepsearch::attention_cpu {

DS_MULTIVERSION
void Scores(const Shape& s, const float* queries, const float* keys, const int64_t* slots,
            const int64_t* limits, float scale, float* scores) {
  const int64_t d = s.head_dim;
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t* row_limit = limits + b * s.rows;
    int64_t max_limit = 0;
    for (int64_t r = 0; r < s.rows; ++r) max_limit = std::max(max_limit, row_limit[r]);
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      const float* k = keys + (slots[b] * s.kv_heads + g) * s.capacity * d;
      const float* q = queries + ((b * s.kv_heads + g) * s.rows) * d;
      float* out = scores + ((b * s.kv_heads + g) * s.rows) * s.keys;
      for (int64_t t = 0; t < max_limit; ++t) {
        const float* k_row = k + t * d;
        for (int64_t r = 0; r < s.rows; ++r) {
          const float* q_row = q + r * d;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t i = 0; i < d; ++i) acc += q_row[i] * k_row[i];
          out[r * s.keys + t] = t < row_limit[r] ? acc * scale : kMinusInf;
        }
      }
      for (int64_t r = 0; r < s.rows; ++r) {
        std::fill(out + r * s.keys + max_limit, out + (r + 1) * s.keys, kMinusInf);
      }
    }
  }
}

DS_MULTIVERSION
void Values(const Shape& s, const float* probs, const float* values, const int64_t* slots,
            const int64_t* limits, float* out) {
  const int64_t d = s.head_dim;
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t* row_limit = limits + b * s.rows;
    int64_t max_limit = 0;
    for (int64_t r = 0; r < s.rows; ++r) max_limit = std::max(max_limit, row_limit[r]);
    for (int64_t g = 0; g < s.kv_heads; ++g) {
      const float* v = values + (slots[b] * s.kv_heads + g) * s.capacity * d;
      const float* p = probs + ((b * s.kv_heads + g) * s.rows) * s.keys;
      float* o = out + ((b * s.kv_heads + g) * s.rows) * d;
      std::memset(o, 0, sizeof(float) * static_cast<size_t>(s.rows * d));
      for (int64_t t = 0; t < max_limit; ++t) {
        const float* v_row = v + t * d;
        for (int64_t r = 0; r < s.rows; ++r) {
          if (t >= row_limit[r]) continue;
          const float w = p[r * s.keys + t];
          float* o_row = o + r * d;
#pragma omp simd
          for (int64_t i = 0; i < d; ++i) o_row[i] += w * v_row[i];
        }
      }
    }
  }
}

}  // namespace deepsearch::attention_cpu
