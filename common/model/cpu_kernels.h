// Fused fp32 kernels for the model's cached forward pass (Qwen2Model::Step) on CPU.
//
// Why: at decode batch sizes a step is ~30 small matrix products and ~180 element-wise ATen
// ops; each op's dispatch and memory pass cost as much as the arithmetic. These kernels do
// the element-wise chains in one pass each (RMSNorm, RoPE, KV writes) and the two
// attention products without per-sequence BLAS calls: keys and values are read in place from
// each sequence's cache slot, queries straight from the projection output, and the result
// is written in the layout o_proj reads. Each kernel is compiled for AVX-512, AVX2 and
// baseline x86-64 with run-time dispatch (target_clones). Matrix products and softmax stay
// in ATen/BLAS.
//
// The arithmetic is the reference's (modeling_qwen2.py) in fp32; only summation order differs
// from ATen's, by float rounding. Training and every non-fp32 or non-CPU model use the ATen
// path, and the tests compare the two.
//
// Thread-compatible: pure functions of their arguments.
#pragma once

#include <cstdint>

namespace deepsearch::cpu_kernels {

// One AdamW step over n fp32 elements in a single pass (ATen's composite form makes nine):
//   p *= decay;  m = m * beta1 + g * (1 - beta1);  v = v * beta2 + g * g * (1 - beta2);
//   p += step * m / (sqrt(v) / bias2_sqrt + eps)
// rounded as ATen's composite form rounds it, with decay = 1 - lr * weight_decay, step = -lr / (1 -
// beta1^t), bias2_sqrt = sqrt(1 - beta2^t), all in fp32: the optimizer update of the trainer on
// CPU. 1 - beta is computed in double by the caller: in fp32, 1 - 0.999f is off by 1.3e-5 relative.
struct AdamWScalars {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, step, bias2_sqrt, eps;
};
void AdamW(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s);

// out[i] = weight * (x[i] * rsqrt(mean(x[i]^2) + eps)) for each of `rows` rows of `dim`.
// `out` may alias `x`.
void RmsNorm(const float* x, const float* weight, float eps, int64_t rows, int64_t dim, float* out);

// Rotates, in place, `heads` consecutive head vectors of `head_dim` at the start of each of
// `rows` rows (row stride `stride` floats) with that row's cos/sin ([rows, head_dim]):
// x' = x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1) over the two halves.
void Rope(float* x, int64_t rows, int64_t stride, int64_t heads, int64_t head_dim, const float* cos,
          const float* sin);

// KV blocks of 16 positions (KvCache::kBlock); keys are stored transposed within a block:
// keys [blocks, kv_heads, head_dim, 16], values [blocks, kv_heads, 16, head_dim] (one layer).
inline constexpr int64_t kBlock = 16;

// Copies token rows' key/value heads into the cache: for each i < count, the kv_heads heads
// of `src + rows[i] * stride` (keys at key_offset, values at value_offset, in floats) go to
// row lanes[i] of block blocks[i].
void WriteKv(const float* src, int64_t stride, int64_t key_offset, int64_t value_offset,
             const int64_t* rows, const int32_t* blocks, const int64_t* lanes, int64_t count,
             int64_t kv_heads, int64_t head_dim, float* keys, float* values);

// The shape of one attention call. Batch row b has `steps` query tokens (padded); token
// (b, s) is row b * steps + s of the projection output. Query head h = g * n_rep + rep of
// that token starts at q + (b * steps + s) * q_stride + h * head_dim. A KV group's R = n_rep
// * steps query rows are ordered rep-major: r = rep * steps + s.
struct AttentionShape {
  int64_t batch;
  int64_t kv_heads;
  int64_t n_rep;
  int64_t steps;
  int64_t head_dim;
  int64_t keys;         // T: the scores' last dimension, >= every limit
  int64_t table_width;  // entries per row of the block tables
  int64_t q_stride;     // floats between consecutive token rows of q
  int64_t out_stride;   // floats between consecutive token rows of out
};

// probs[b, g, r, :] = softmax over t < limit[b, r] of scale * <query row r of group g, key t
// of row b>, and 0 for t >= limit; key t of row b is in block tables[b * table_width + t / 16].
// probs: [batch, kv_heads, n_rep * steps, keys]. Each row is computed in a fixed order that
// does not depend on the batch, the padding or `keys`, so a row's result is bit-identical
// whatever else is in the step.
void AttentionProbs(const AttentionShape& shape, const float* q, const float* keys,
                    const int32_t* tables, const int64_t* limits, float scale, float* probs);

// exp(x) for float, vectorisable (Cody-Waite reduction, degree-6 polynomial; relative error
// about 1e-7 on [-87, 88], 0 below -87.3). Exposed for tests.
float Exp(float x);

// For every query row: sum over t < limit of probs[b, g, r, t] * (value t of row b, group g),
// written where that query head sits in `out` (token row b * steps + s, head h). Positions
// at or beyond a row's limit must have probability 0 (softmax of -inf gives exactly that).
void AttentionValues(const AttentionShape& shape, const float* probs, const float* values,
                     const int32_t* tables, const int64_t* limits, float* out);

}  // namespace deepsearch::cpu_kernels
