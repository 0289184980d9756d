// y = x W^T + b for the training forward and backward on CPUs with AVX-512, on the packed
// micro-kernel of gemm_cpu.h instead of the BLAS that ATen calls.
//
// Why: on CPUs where OpenBLAS picks its AVX2 kernels (AMD EPYC among them) its sgemm runs at
// about half of what the packed AVX-512 kernel reaches, and the training step of the fp32
// trainer is mostly these products (docs/BENCHMARKS.md, "Tree-GRPO training"). A custom
// autograd function computes the three products of a linear layer on that kernel:
//   forward   y[M, N]  = x[M, K] W[N, K]^T            (W packed as stored)
//   backward  dx[M, K] = dy[M, N] W                  (W^T packed straight from W)
//             dW[N, K] = dy^T[N, M] x                (x^T packed straight from x; dy transposed)
//             db[N]    = sum over rows of dy
// and the same for the batched products of attention (TrainMatmulNT: c = a b^T, da = dc b,
// db = dc^T a).
// Each packing costs one pass over its matrix, small beside the product over every token.
// Sums run in fp32 in k order (k blocked for the long sums over tokens), so results match
// ATen's to rounding, not bit for bit.
#pragma once

#include "common/model/torch_pch.h"

namespace deepsearch {

// Whether TrainLinear takes the packed path for x and w: fp32 CPU tensors on a CPU with
// AVX-512F.
bool UsesPackedLinear(const at::Tensor& x, const at::Tensor& w);

// Whether TrainMatmulNT takes the packed path: fp32 CPU tensors of the same batch shape (at
// least one batch dimension) on a CPU with AVX-512F.
bool UsesPackedMatmul(const at::Tensor& a, const at::Tensor& b);

// at::linear(x, w, bias) with autograd (grad mode on): on the packed path where
// UsesPackedLinear, through at::linear otherwise. x [..., K], w [N, K], bias [N] or undefined.
at::Tensor TrainLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

// a b^T over batches, with autograd: a [..., M, K], b [..., N, K] (any strides) -> [..., M, N];
// the attention products (q k^T, and p v as p (v^T)^T). On the packed path where
// UsesPackedMatmul, at::matmul otherwise.
at::Tensor TrainMatmulNT(const at::Tensor& a, const at::Tensor& b);

}  // namespace deepsearch
