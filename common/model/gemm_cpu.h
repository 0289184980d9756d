// Single-thread fp32 matrix products with pre-packed weights, for the model's inference path
// and the training linear, on CPUs with AVX-512 or with AVX2 and FMA.
//
//   C[M, N] (+)= A[M, K] * W^T + bias      W: [N, K] row-major, as nn.Linear stores it
//
// Why: at decode batch sizes (M = 1..256) a general BLAS re-packs the whole weight matrix on
// every call, and the weights arrive from memory each step; packing once, when the weights
// change, leaves a pure stream of reads. The weights are packed into panels of 32 output
// columns ([K][32] each, the last padded with zeros); a 12 x 32 micro-kernel keeps 24 zmm
// accumulators, loads two vectors of a panel per k and broadcasts one activation per row
// (the layout of the GotoBLAS/BLIS micro-kernels). Accumulation is in fp32 in k order.
// Without AVX-512 a 3 x 32 AVX2 micro-kernel (12 ymm accumulators) reads the same panels.
// Both compute every output element by the same fma chain in k order, so their results are
// bit-identical, and no element depends on how many rows a call has: a sequence's logits are
// the same alone or in any batch (the engine's tests hold it to that).
//
// Available() says whether the CPU runs either kernel; callers fall back to BLAS otherwise.
// Thread-compatible: a PackedWeight is immutable once built.
#pragma once

#include <cstdint>
#include <memory>

namespace deepsearch::gemm_cpu {

// Whether this CPU has AVX-512F, or AVX2 and FMA (checked once).
bool Available();
// The kernel Gemm runs: "avx512", "avx2" or "none".
const char* KernelName();
// Tests: run the AVX2 kernel even where AVX-512 is there (false: where AVX2 is not).
bool ForceAvx2ForTesting(bool force);

class PackedWeight {
 public:
  PackedWeight() = default;
  // Packs W [n, k] (row-major, row stride `ldw` floats).
  static PackedWeight Pack(const float* w, int64_t n, int64_t k, int64_t ldw);
  // Packs W [n, k] whose element (j, i) is at w[j * row_stride + i * column_stride]: with
  // row_stride 1 and column_stride n it packs the transpose of a row-major [k, n] matrix
  // (what the training backward multiplies by), without materialising it.
  static PackedWeight PackStrided(const float* w, int64_t n, int64_t k, int64_t row_stride,
                                  int64_t column_stride);

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  const float* data() const { return data_.get(); }
  bool empty() const { return n_ == 0; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  int64_t n_ = 0;
  int64_t k_ = 0;
  std::unique_ptr<float[], Free> data_;
};

// C[m, n] = (accumulate ? C : 0) + A[m, k] * W^T + (bias ? bias : 0). A has row stride lda,
// C row stride ldc (floats). Requires Available().
//
// k_block 0 sums over all of k in registers (the inference shapes: k <= a few thousand, one
// panel in L2). A positive k_block sums k in blocks of that many, adding each block's partial
// product into C, so a panel block stays in L2 when k is long (the training backward's weight
// gradient sums over every token of a micro-batch); the sum order then differs.
void Gemm(const float* a, int64_t lda, int64_t m, const PackedWeight& w, const float* bias,
          bool accumulate, float* c, int64_t ldc, int64_t k_block = 0);

}  // namespace deepsearch::gemm_cpu
