#include "common/model/train_linear.h"

#include <torch/csrc/autograd/custom_function.h>

#include "common/model/gemm_cpu.h"

namespace deepsearch {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The sum over tokens in dW runs in blocks of this many, so a panel's block (kKBlock x 128
// bytes) stays in L2 however many tokens a micro-batch holds.
constexpr int64_t kKBlock = 512;

// out[m, n] = a[m, k] * packed^T (+ bias), all contiguous fp32.
void PackedProduct(const at::Tensor& a, const gemm_cpu::PackedWeight& packed, const float* bias,
                   at::Tensor& out) {
  gemm_cpu::Gemm(a.data_ptr<float>(), a.size(1), a.size(0), packed, bias, /*accumulate=*/false,
                 out.data_ptr<float>(), out.size(1), kKBlock);
}

// y = x W^T + b; the parts shared by the two autograd functions below (with and without a
// bias: an undefined tensor cannot be an input of a custom function).
at::Tensor LinearForward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                         const at::Tensor& bias) {
  const int64_t k = w.size(1), n = w.size(0);
  const at::Tensor x2 = x.reshape({-1, k}).contiguous();
  const at::Tensor wc = w.contiguous();
  const at::Tensor b = bias.defined() ? bias.contiguous() : bias;
  at::Tensor y = at::empty({x2.size(0), n}, x.options());
  const gemm_cpu::PackedWeight packed = gemm_cpu::PackedWeight::Pack(wc.data_ptr<float>(), n, k, k);
  PackedProduct(x2, packed, b.defined() ? b.data_ptr<float>() : nullptr, y);
  ctx->save_for_backward({x2, wc});
  ctx->saved_data["x_sizes"] = x.sizes().vec();
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = n;
  return y.view(sizes);
}

// {dx, dW, db}; db only when `bias`.
variable_list LinearBackward(AutogradContext* ctx, const variable_list& grads, bool bias) {
  const variable_list saved = ctx->get_saved_variables();
  const at::Tensor& x2 = saved[0];  // [M, K]
  const at::Tensor& w = saved[1];   // [N, K]
  const int64_t m = x2.size(0), k = w.size(1), n = w.size(0);
  const at::Tensor g = grads[0].reshape({m, n}).contiguous();
  variable_list out(bias ? 3 : 2);
  if (ctx->needs_input_grad(0)) {
    // dx = dy W: the "weight" of this product is W^T [K, N], element (j, i) = W[i, j].
    const gemm_cpu::PackedWeight wt =
        gemm_cpu::PackedWeight::PackStrided(w.data_ptr<float>(), k, n, 1, k);
    at::Tensor grad_x = at::empty({m, k}, x2.options());
    PackedProduct(g, wt, nullptr, grad_x);
    out[0] = grad_x.view(ctx->saved_data["x_sizes"].toIntVector());
  }
  if (ctx->needs_input_grad(1)) {
    // dW = dy^T x: rows of dy^T against x^T [K, M], element (j, i) = x[i, j].
    const at::Tensor gt = g.t().contiguous();
    const gemm_cpu::PackedWeight xt =
        gemm_cpu::PackedWeight::PackStrided(x2.data_ptr<float>(), k, m, 1, k);
    out[1] = at::empty({n, k}, w.options());
    PackedProduct(gt, xt, nullptr, out[1]);
  }
  if (bias && ctx->needs_input_grad(2)) out[2] = g.sum(0);
  return out;
}

struct PackedLinear : public torch::autograd::Function<PackedLinear> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) {
    return LinearForward(ctx, x, w, at::Tensor());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return LinearBackward(ctx, grads, /*bias=*/false);
  }
};

struct PackedLinearWithBias : public torch::autograd::Function<PackedLinearWithBias> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& bias) {
    return LinearForward(ctx, x, w, bias);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return LinearBackward(ctx, grads, /*bias=*/true);
  }
};

// c[i] = a[i] b[i]^T over a batch: a [L, M, K] (rows contiguous), b [L, N, K] with any strides.
// The attention products of the training forward and backward, on the packed kernel.
void BatchedProductNT(const at::Tensor& a, const at::Tensor& b, at::Tensor& c) {
  const int64_t batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(1);
  const float* a_data = a.data_ptr<float>();
  const float* b_data = b.data_ptr<float>();
  float* c_data = c.data_ptr<float>();
  for (int64_t i = 0; i < batch; ++i) {
    const gemm_cpu::PackedWeight packed = gemm_cpu::PackedWeight::PackStrided(
        b_data + i * b.stride(0), n, k, b.stride(1), b.stride(2));
    gemm_cpu::Gemm(a_data + i * a.stride(0), a.stride(1), m, packed, nullptr, false,
                   c_data + i * c.stride(0), c.stride(1), kKBlock);
  }
}

// a [L, M, K] row-contiguous.
at::Tensor RowContiguous(const at::Tensor& a) {
  return a.stride(2) == 1 && a.stride(1) >= a.size(2) ? a : a.contiguous();
}

struct PackedMatmulNT : public torch::autograd::Function<PackedMatmulNT> {
  // a [L, M, K], b [L, N, K] -> [L, M, N].
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor ac = RowContiguous(a);
    at::Tensor c = at::empty({a.size(0), a.size(1), b.size(1)}, a.options());
    BatchedProductNT(ac, b, c);
    ctx->save_for_backward({ac, b});
    return c;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& a = saved[0];              // [L, M, K]
    const at::Tensor& b = saved[1];              // [L, N, K]
    const at::Tensor g = grads[0].contiguous();  // [L, M, N]
    variable_list out(2);
    if (ctx->needs_input_grad(0)) {
      // da = g b = g (b^T)^T: b^T [L, K, N] is b with its last two strides swapped.
      out[0] = at::empty(a.sizes(), a.options());
      BatchedProductNT(g, b.transpose(1, 2), out[0]);
    }
    if (ctx->needs_input_grad(1)) {
      // db = g^T a = g^T (a^T)^T.
      out[1] = at::empty(b.sizes(), b.options());
      BatchedProductNT(g.transpose(1, 2).contiguous(), a.transpose(1, 2), out[1]);
    }
    return out;
  }
};

bool CpuFloat(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; }

}  // namespace

bool UsesPackedLinear(const at::Tensor& x, const at::Tensor& w) {
  return gemm_cpu::Available() && CpuFloat(x) && CpuFloat(w) && w.dim() == 2 && x.dim() >= 1 &&
         x.size(-1) == w.size(1);
}

bool UsesPackedMatmul(const at::Tensor& a, const at::Tensor& b) {
  return gemm_cpu::Available() && CpuFloat(a) && CpuFloat(b) && a.dim() >= 3 &&
         a.dim() == b.dim() && a.size(-1) == b.size(-1) &&
         a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2);
}

at::Tensor TrainLinear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  if (!UsesPackedLinear(x, w) || (bias.defined() && bias.scalar_type() != at::kFloat))
    return at::linear(x, w, bias);
  return bias.defined() ? PackedLinearWithBias::apply(x, w, bias) : PackedLinear::apply(x, w);
}

at::Tensor TrainMatmulNT(const at::Tensor& a, const at::Tensor& b) {
  if (!UsesPackedMatmul(a, b)) return at::matmul(a, b.transpose(-1, -2));
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-2);
  std::vector<int64_t> sizes = a.sizes().vec();
  sizes.back() = n;
  return PackedMatmulNT::apply(a.reshape({-1, m, k}), b.reshape({-1, n, k})).view(sizes);
}

}  // namespace deepsearch
