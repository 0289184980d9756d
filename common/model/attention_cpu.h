// Attention over the KV cache on CPU in fp32, without materialising per-sequence key/value
// tensors: the two matrix products of attention (scores = Q K^T, out = P V) read keys and
// values directly from each sequence's cache slot.
//
// Why: ATen's batched matmul on CPU runs one BLAS call per (sequence, KV head) pair; for
// decoding, where each call is a 3 x 64 x T product, call overhead dominated the whole step.
// These loops process the n_rep query rows of a KV group together, so each key and value row
// is loaded once per group, and are compiled for AVX-512, AVX2 and baseline x86-64 with
// run-time dispatch. Softmax stays in ATen (vectorised exp).
//
// Layouts (all contiguous, fp32):
//   queries [B, n_kv, R, D]        R = n_rep x S query rows per KV group
//   keys, values: one layer of the cache, [slots, n_kv, t_cap, D]
//   limits  [B, R]                 keys visible to each row: positions [0, limit)
//   scores / probs [B, n_kv, R, T] T >= every limit; invisible positions hold -inf / 0
//   out     [B, n_kv, R, D]
// Thread-compatible: pure functions of their arguments.
#pragma once

#include <cstdint>

namespace deepsearch::attention_cpu {

struct Shape {
  int64_t batch;
  int64_t kv_heads;
  int64_t rows;      // R
  int64_t head_dim;  // D
  int64_t keys;      // T, the scores' last dimension
  int64_t capacity;  // t_cap, the cache's length capacity
};

// scores[b, g, r, t] = scale * <q[b, g, r], keys[slot[b], g, t]> for t < limit[b, r], else -inf.
void Scores(const Shape& shape, const float* queries, const float* keys, const int64_t* slots,
            const int64_t* limits, float scale, float* scores);

// out[b, g, r] = sum over t < limit[b, r] of probs[b, g, r, t] * values[slot[b], g, t].
void Values(const Shape& shape, const float* probs, const float* values, const int64_t* slots,
            const int64_t* limits, float* out);

}  // namespace deepsearch::attention_cpu
