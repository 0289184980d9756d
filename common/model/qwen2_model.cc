// The Qwen2 model: its parameters, their loading and initialisation, and the full-sequence
// forward of training. The cached step of generation is qwen2_step.cc.
#include "common/model/qwen2_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/version.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/logging.h"
#include "common/core/rng.h"
#include "common/core/status.h"
#include "common/model/cpu_kernels.h"
#include "common/model/qwen2_internal.h"
#include "common/model/train_linear.h"

namespace deepsearch {
namespace {

using qwen2_internal::RmsNorm;

// rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the last dimension.
at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor ApplyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos + RotateHalf(x) * sin;
}

std::string LayerName(int64_t i, std::string_view rest) {
  return absl::StrCat("model.layers.", i, ".", std::string(rest));
}

}  // namespace

absl::StatusOr<at::ScalarType> ParseModelDtype(std::string_view name) {
  if (name == "float32" || name == "fp32" || name == "float") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return at::kHalf;
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", std::string(name),
                                                 "' (expected float32, bfloat16 or float16)"));
}

absl::StatusOr<at::Device> ParseDevice(std::string_view name) {
  const std::string text(name);
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown device '", text, "' (expected cpu, cuda or cuda:N)"));
  }
  if (device.is_cpu()) return device;
  if (!device.is_cuda()) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", text, "': only cpu and cuda are supported"));
  }
  // Said now, at start, rather than by the first tensor put there.
#ifdef DEEPSEARCH_HAS_CUDA
  if (!at::hasCUDA()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device '", text, "': this build's LibTorch ", TORCH_VERSION,
                     " has CUDA, but no GPU is usable here (none visible, or no driver); use cpu"));
  }
  const int64_t gpus = static_cast<int64_t>(at::getNumGPUs());
  if (device.has_index() && device.index() >= gpus) {
    return absl::FailedPreconditionError(absl::StrCat(
        "device '", text, "': only ", gpus, " GPU(s) visible (cuda:0 to cuda:", gpus - 1, ")"));
  }
  return device;
#else
  return absl::FailedPreconditionError(
      absl::StrCat("device '", text, "': this build's LibTorch ", TORCH_VERSION,
                   " has no CUDA; build against a CUDA LibTorch (docs/BUILD.md) or use cpu"));
#endif
}

Qwen2Model::Qwen2Model(const Qwen2Config& config, const ModelOptions& options)
    : config_(config), options_(options) {
  const auto opts = at::TensorOptions().dtype(options.dtype).device(options.device);
  const int64_t h = config.hidden_size, d = config.head_dim, i = config.intermediate_size;
  const int64_t qkv_rows = (config.num_attention_heads + 2 * config.num_key_value_heads) * d;
  embed_ = at::zeros({config.vocab_size, h}, opts);
  final_norm_ = at::zeros({h}, opts);
  lm_head_ = config.tie_word_embeddings ? embed_ : at::zeros({config.vocab_size, h}, opts);
  layers_.resize(static_cast<size_t>(config.num_hidden_layers));
  for (Layer& layer : layers_) {
    layer.input_norm = at::zeros({h}, opts);
    layer.qkv_weight = at::zeros({qkv_rows, h}, opts);
    layer.qkv_bias = at::zeros({qkv_rows}, opts);
    layer.o_weight = at::zeros({h, config.num_attention_heads * d}, opts);
    layer.post_norm = at::zeros({h}, opts);
    layer.gate_up_weight = at::zeros({2 * i, h}, opts);
    layer.down_weight = at::zeros({h, i}, opts);
  }
  // inv_freq[j] = 1 / theta^(2j/D), computed in fp32 from an int64 arange, as the reference.
  inv_freq_ = 1.0 / at::pow(config.rope_theta,
                            at::arange(0, d, 2, at::kLong).to(at::kFloat) / static_cast<double>(d));
  inv_freq_ = inv_freq_.to(options.device);
}

absl::StatusOr<std::unique_ptr<Qwen2Model>> Qwen2Model::Create(const Qwen2Config& config,
                                                               const ModelOptions& options) {
  DS_RETURN_IF_ERROR(config.Validate());
  if (options.dtype != at::kFloat && options.dtype != at::kBFloat16 && options.dtype != at::kHalf) {
    return absl::InvalidArgumentError("model dtype must be float32, bfloat16 or float16");
  }
  // Some builds lack matrix products in some dtypes (LibTorch 1.13 has no float16 GEMM on
  // CPU): find out now, with a clear error, rather than in the middle of a forward pass.
  try {
    const auto probe = at::TensorOptions().dtype(options.dtype).device(options.device);
    (void)at::linear(at::ones({2, 2}, probe), at::ones({2, 2}, probe), at::ones({2}, probe));
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("this LibTorch cannot multiply ", c10::toString(options.dtype),
                     " matrices on ", options.device.str(), " (use float32 or bfloat16 there)"));
  }
  try {
    return std::unique_ptr<Qwen2Model>(new Qwen2Model(config, options));
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate the model (",
                                                     config.NumParameters(),
                                                     " parameters): ", e.what_without_backtrace()));
  }
}

std::vector<std::pair<std::string, at::Tensor>> Qwen2Model::NamedParameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const int64_t q = config_.num_attention_heads * config_.head_dim;
  const int64_t kv = config_.num_key_value_heads * config_.head_dim;
  const int64_t inter = config_.intermediate_size;
  out.emplace_back("model.embed_tokens.weight", embed_);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    const Layer& l = layers_[static_cast<size_t>(i)];
    out.emplace_back(LayerName(i, "input_layernorm.weight"), l.input_norm);
    out.emplace_back(LayerName(i, "self_attn.q_proj.weight"), l.qkv_weight.narrow(0, 0, q));
    out.emplace_back(LayerName(i, "self_attn.q_proj.bias"), l.qkv_bias.narrow(0, 0, q));
    out.emplace_back(LayerName(i, "self_attn.k_proj.weight"), l.qkv_weight.narrow(0, q, kv));
    out.emplace_back(LayerName(i, "self_attn.k_proj.bias"), l.qkv_bias.narrow(0, q, kv));
    out.emplace_back(LayerName(i, "self_attn.v_proj.weight"), l.qkv_weight.narrow(0, q + kv, kv));
    out.emplace_back(LayerName(i, "self_attn.v_proj.bias"), l.qkv_bias.narrow(0, q + kv, kv));
    out.emplace_back(LayerName(i, "self_attn.o_proj.weight"), l.o_weight);
    out.emplace_back(LayerName(i, "post_attention_layernorm.weight"), l.post_norm);
    out.emplace_back(LayerName(i, "mlp.gate_proj.weight"), l.gate_up_weight.narrow(0, 0, inter));
    out.emplace_back(LayerName(i, "mlp.up_proj.weight"), l.gate_up_weight.narrow(0, inter, inter));
    out.emplace_back(LayerName(i, "mlp.down_proj.weight"), l.down_weight);
  }
  out.emplace_back("model.norm.weight", final_norm_);
  if (!config_.tie_word_embeddings) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

std::vector<std::string> Qwen2Model::ParameterNames() const {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : NamedParameters()) names.push_back(name);
  return names;
}

std::vector<at::Tensor> Qwen2Model::Parameters() const {
  std::vector<at::Tensor> out{embed_, final_norm_};
  if (!config_.tie_word_embeddings) out.push_back(lm_head_);
  for (const Layer& l : layers_) {
    for (const at::Tensor& t : {l.input_norm, l.qkv_weight, l.qkv_bias, l.o_weight, l.post_norm,
                                l.gate_up_weight, l.down_weight}) {
      out.push_back(t);
    }
  }
  return out;
}

void Qwen2Model::InitializeRandom(uint64_t seed) {
  c10::NoGradGuard no_grad;
  const Rng base(seed);
  uint64_t stream = 0;
  for (auto& [name, tensor] : NamedParameters()) {
    ++stream;
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      tensor.fill_(1.0);
    } else if (is_bias) {
      tensor.zero_();
    } else {
      Rng rng = base.Fork(stream);
      std::vector<float> values(static_cast<size_t>(tensor.numel()));
      for (float& v : values) v = static_cast<float>(rng.Normal() * config_.initializer_range);
      tensor.copy_(at::from_blob(values.data(), tensor.sizes(), at::kFloat));
    }
  }
}

absl::Status Qwen2Model::LoadTensors(const std::function<at::Tensor(const std::string&)>& lookup) {
  c10::NoGradGuard no_grad;
  std::vector<std::string> missing, mismatched;
  for (auto& [name, param] : NamedParameters()) {
    at::Tensor source = lookup(name);
    if (!source.defined() && name.rfind("model.", 0) == 0)
      source = lookup(name.substr(6));  // base-model layout
    if (!source.defined()) {
      missing.push_back(name);
      continue;
    }
    if (source.sizes() != param.sizes()) {
      mismatched.push_back(absl::StrCat(name, ": expected [", absl::StrJoin(param.sizes(), ", "),
                                        "], got [", absl::StrJoin(source.sizes(), ", "), "]"));
      continue;
    }
    try {
      param.copy_(source);
    } catch (const c10::Error& e) {
      return absl::InternalError(absl::StrCat("tensor ", name, ": ", e.what_without_backtrace()));
    }
  }
  if (missing.empty() && mismatched.empty()) return absl::OkStatus();
  std::string message;
  if (!missing.empty())
    absl::StrAppend(&message, missing.size(), " missing tensor(s): ", absl::StrJoin(missing, ", "));
  if (!mismatched.empty()) {
    absl::StrAppend(&message, message.empty() ? "" : "; ", mismatched.size(),
                    " tensor(s) with the wrong shape: ", absl::StrJoin(mismatched, "; "));
  }
  return absl::InvalidArgumentError(message);
}

std::pair<at::Tensor, at::Tensor> Qwen2Model::Rotary(const at::Tensor& positions) const {
  // freqs = pos * inv_freq in fp32; emb = cat(freqs, freqs); cos/sin in fp32, then the model dtype.
  const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(options_.dtype), emb.sin().to(options_.dtype)};
}

Qwen2Model::Projected Qwen2Model::Project(const Layer& layer, const at::Tensor& h,
                                          const at::Tensor& cos, const at::Tensor& sin) const {
  const int64_t b = h.size(0), s = h.size(1);
  const int64_t n_heads = config_.num_attention_heads, n_kv = config_.num_key_value_heads,
                d = config_.head_dim;
  const at::Tensor qkv = TrainLinear(h, layer.qkv_weight, layer.qkv_bias);
  const at::Tensor c = cos.unsqueeze(2), sn = sin.unsqueeze(2);  // [B, S, 1, D]
  return {ApplyRotary(qkv.narrow(-1, 0, n_heads * d).view({b, s, n_heads, d}), c, sn),
          ApplyRotary(qkv.narrow(-1, n_heads * d, n_kv * d).view({b, s, n_kv, d}), c, sn),
          qkv.narrow(-1, (n_heads + n_kv) * d, n_kv * d).view({b, s, n_kv, d})};
}

at::Tensor Qwen2Model::AttendDense(const at::Tensor& q, const at::Tensor& keys,
                                   const at::Tensor& values, const at::Tensor& allowed) const {
  const int64_t b = q.size(0), s = q.size(1), t = keys.size(2);
  const int64_t n_heads = config_.num_attention_heads, n_kv = config_.num_key_value_heads,
                d = config_.head_dim;
  const int64_t n_rep = n_heads / n_kv;
  // GQA with contiguous groups: query head h reads KV head h / n_rep. The n_rep query heads of
  // a group become rows of one matrix product with that group's keys.
  const at::Tensor grouped =
      q.view({b, s, n_kv, n_rep, d}).permute({0, 2, 3, 1, 4}).reshape({b, n_kv, n_rep * s, d});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // The scale goes on q (S x D) rather than on the scores (S x T): a pass over a far smaller
  // tensor, and exact where D is a power of 4 (the scale is then a power of 2).
  const at::Tensor scores = TrainMatmulNT(grouped * scale, keys);  // [B, nKV, n_rep*S, T]
  const at::Tensor masked =
      scores.view({b, n_kv, n_rep, s, t})
          .to(at::kFloat)
          .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  const at::Tensor probs = at::softmax(masked, -1).to(options_.dtype).view({b, n_kv, n_rep * s, t});
  return TrainMatmulNT(probs, values.transpose(-1, -2))
      .view({b, n_kv, n_rep, s, d})
      .permute({0, 3, 1, 2, 4})
      .reshape({b, s, n_heads * d});
}

at::Tensor Qwen2Model::Mlp(const Layer& layer, const at::Tensor& h) const {
  const int64_t inter = config_.intermediate_size;
  const at::Tensor gate_up = TrainLinear(h, layer.gate_up_weight);
  return TrainLinear(at::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter),
                     layer.down_weight);
}

at::Tensor Qwen2Model::Forward(const at::Tensor& ids, const at::Tensor& lengths) const {
  DS_CHECK(ids.dim() == 2 && lengths.dim() == 1 && lengths.size(0) == ids.size(0))
      << "Forward: bad input shapes";
  const int64_t b = ids.size(0), t = ids.size(1);
  const auto device = options_.device;
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device);
  // allowed[b, s, k] = k <= s and k < length[b]; shaped [B, 1, 1, S, T] for the grouped scores.
  const at::Tensor key = at::arange(t, long_options);
  const at::Tensor causal = key.view({1, t}) <= key.view({t, 1});                   // [S, T]
  const at::Tensor in_length = key.view({1, t}) < lengths.to(device).view({b, 1});  // [B, T]
  const at::Tensor allowed = (causal.unsqueeze(0) & in_length.unsqueeze(1)).view({b, 1, 1, t, t});
  // Everything but attention works token by token, so it runs on the real tokens only, packed
  // as one row [1, N, H] (N = the sum of the lengths): the padding of a ragged micro-batch costs
  // no GEMM or element-wise work. Attention scatters q, k and v into the padded [B, T] layout
  // and gathers its output back. `real` lists the flat index b * T + s of each real token.
  const at::Tensor real = in_length.view({-1}).nonzero().view({-1});
  const int64_t n = real.size(0);
  const bool padded = n != b * t;
  auto pack = [&](const at::Tensor& padded_rows) {  // [B, T, F] -> [1, N, F]
    const at::Tensor rows = padded_rows.reshape({b * t, -1});
    return (padded ? rows.index_select(0, real) : rows).unsqueeze(0);
  };
  auto unpack = [&](const at::Tensor& packed_rows) {  // [1, N, F] -> [B, T, F], zero padding
    const at::Tensor rows = packed_rows.squeeze(0);
    if (!padded) return rows.view({b, t, -1});
    return at::zeros({b * t, rows.size(1)}, rows.options())
        .index_copy(0, real, rows)
        .view({b, t, -1});
  };
  const at::Tensor positions = pack(key.expand({b, t}).unsqueeze(-1)).squeeze(-1);  // [1, N]
  const auto [cos, sin] = Rotary(positions);
  at::Tensor x = at::embedding(embed_, pack(ids.to(device).unsqueeze(-1)).squeeze(-1));
  const int64_t n_heads = config_.num_attention_heads, n_kv = config_.num_key_value_heads,
                d = config_.head_dim;
  for (const Layer& layer : layers_) {
    const Projected p =
        Project(layer, RmsNorm(x, layer.input_norm, config_.rms_norm_eps), cos, sin);
    const at::Tensor q = unpack(p.q.reshape({1, n, n_heads * d})).view({b, t, n_heads, d});
    const at::Tensor k = unpack(p.k.reshape({1, n, n_kv * d})).view({b, t, n_kv, d});
    const at::Tensor v = unpack(p.v.reshape({1, n, n_kv * d})).view({b, t, n_kv, d});
    x = x + TrainLinear(pack(AttendDense(q, k.transpose(1, 2), v.transpose(1, 2), allowed)),
                        layer.o_weight);
    x = x + Mlp(layer, RmsNorm(x, layer.post_norm, config_.rms_norm_eps));
  }
  return unpack(TrainLinear(RmsNorm(x, final_norm_, config_.rms_norm_eps), lm_head_))
      .to(at::kFloat);
}

bool Qwen2Model::UsesCpuKernels() const {
  return options_.device.is_cpu() && options_.dtype == at::kFloat;
}

KvCache Qwen2Model::NewCache(int64_t initial_blocks, int64_t max_blocks) const {
  return KvCache(config_, options_.dtype, options_.device,
                 UsesCpuKernels() ? KvLayout::kTiledKeys : KvLayout::kTokenMajor, initial_blocks,
                 max_blocks);
}

}  // namespace deepsearch
