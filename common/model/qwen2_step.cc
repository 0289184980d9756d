// The Qwen2 model's cached step (qwen2_model.h, Step): the plan of a step over a KvCache,
// the dense path (ATen, any device and dtype) and the fused CPU float32 path
// (cpu_kernels.h), with the packed weights it reads.
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/cpu_kernels.h"
#include "common/model/qwen2_internal.h"
#include "common/model/qwen2_model.h"

namespace deepsearch {

using qwen2_internal::RmsNorm;

// Everything a cached step needs, computed on the host before any tensor work.
struct Qwen2Model::StepPlan {
  int64_t batch = 0;
  int64_t steps = 0;        // S: the longest input; shorter ones are padded
  int64_t keys = 0;         // T: the longest context after the step
  int64_t table_width = 0;  // blocks per row of `tables`
  std::vector<int64_t> prior, count;
  std::vector<int32_t> tables;  // [B, table_width]: each row's blocks (padding: its first block)
  std::vector<int64_t> ids, positions;  // [B, S]; padding repeats the last real token
  std::vector<int64_t> real_rows;       // row (b * S + s) of every real token
  std::vector<int32_t> real_blocks;     // and the block and row within it where its KV goes
  std::vector<int64_t> real_lanes;
  std::vector<int64_t> last;    // the row of each input's last token
  std::vector<int64_t> limits;  // [B, n_rep * S]: keys visible to each query row of a group
};

absl::StatusOr<Qwen2Model::StepPlan> Qwen2Model::PlanStep(
    KvCache& cache, absl::Span<const StepInput> inputs) const {
  if (inputs.empty()) return absl::InvalidArgumentError("Step: no inputs");
  StepPlan plan;
  const int64_t b = static_cast<int64_t>(inputs.size());
  plan.batch = b;
  plan.prior.resize(inputs.size());
  plan.count.resize(inputs.size());
  absl::flat_hash_set<KvCache::SequenceId> seen;
  for (size_t j = 0; j < inputs.size(); ++j) {
    const StepInput& in = inputs[j];
    if (!cache.Contains(in.sequence)) {
      return absl::InvalidArgumentError(absl::StrCat("Step: unknown KV sequence ", in.sequence));
    }
    if (in.tokens.empty())
      return absl::InvalidArgumentError(absl::StrCat("Step: no tokens for sequence ", in.sequence));
    if (!seen.insert(in.sequence).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Step: sequence ", in.sequence, " appears twice"));
    }
    for (int32_t token : in.tokens) {
      if (token < 0 || token >= config_.vocab_size) {
        return absl::InvalidArgumentError(
            absl::StrCat("Step: token id ", token, " out of range [0, ", config_.vocab_size, ")"));
      }
    }
    plan.prior[j] = cache.Length(in.sequence);
    plan.count[j] = static_cast<int64_t>(in.tokens.size());
    plan.steps = std::max(plan.steps, plan.count[j]);
    plan.keys = std::max(plan.keys, plan.prior[j] + plan.count[j]);
  }
  if (plan.keys > config_.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("Step: context of ", plan.keys,
                                                   " tokens exceeds max_position_embeddings ",
                                                   config_.max_position_embeddings));
  }
  // Room for the new positions (the only mutation before the forward pass; a sequence left
  // with spare blocks after a failure simply reuses them next time).
  for (size_t j = 0; j < inputs.size(); ++j)
    DS_RETURN_IF_ERROR(cache.PrepareAppend(inputs[j].sequence, plan.count[j]));

  const int64_t s_max = plan.steps;
  const int64_t n_rep = config_.num_attention_heads / config_.num_key_value_heads;
  plan.table_width = (plan.keys + KvCache::kBlock - 1) / KvCache::kBlock;
  plan.tables.resize(static_cast<size_t>(b * plan.table_width));
  plan.ids.resize(static_cast<size_t>(b * s_max));
  plan.positions.resize(static_cast<size_t>(b * s_max));
  plan.last.resize(static_cast<size_t>(b));
  plan.limits.resize(static_cast<size_t>(b * n_rep * s_max));
  for (size_t j = 0; j < inputs.size(); ++j) {
    const StepInput& in = inputs[j];
    const std::vector<KvCache::BlockId>& blocks = cache.Blocks(in.sequence);
    for (int64_t k = 0; k < plan.table_width; ++k) {
      plan.tables[j * plan.table_width + k] =
          k < static_cast<int64_t>(blocks.size()) ? blocks[k] : blocks.front();
    }
    const int64_t row0 = static_cast<int64_t>(j) * s_max;
    for (int64_t s = 0; s < s_max; ++s) {
      const int64_t real = std::min(s, plan.count[j] - 1);
      plan.ids[static_cast<size_t>(row0 + s)] = in.tokens[static_cast<size_t>(real)];
      const int64_t position = plan.prior[j] + real;
      plan.positions[static_cast<size_t>(row0 + s)] = position;
      if (s < plan.count[j]) {
        plan.real_rows.push_back(row0 + s);
        plan.real_blocks.push_back(blocks[static_cast<size_t>(position / KvCache::kBlock)]);
        plan.real_lanes.push_back(position % KvCache::kBlock);
      }
      // Query row (rep, s) of this input's KV groups sees keys [0, position + 1).
      for (int64_t rep = 0; rep < n_rep; ++rep) {
        plan.limits[static_cast<size_t>((static_cast<int64_t>(j) * n_rep + rep) * s_max + s)] =
            position + 1;
      }
    }
    plan.last[j] = row0 + plan.count[j] - 1;
  }
  return plan;
}

absl::StatusOr<at::Tensor> Qwen2Model::Step(KvCache& cache,
                                            absl::Span<const StepInput> inputs) const {
  DS_ASSIGN_OR_RETURN(const StepPlan plan, PlanStep(cache, inputs));
  try {
    c10::NoGradGuard no_grad;
    // The cache's layout picks the executor (NewCache picks the layout).
    at::Tensor logits =
        cache.layout() == KvLayout::kTiledKeys ? StepCpuFp32(cache, plan) : StepDense(cache, plan);
    for (size_t j = 0; j < inputs.size(); ++j)
      cache.SetLength(inputs[j].sequence, plan.prior[j] + plan.count[j]);
    return logits;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Step: ", e.what_without_backtrace()));
  }
}

namespace {

// A host vector as an index tensor on `device` (always a copy).
at::Tensor IndexTensor(const std::vector<int64_t>& v, at::IntArrayRef shape, at::Device device) {
  return at::from_blob(const_cast<int64_t*>(v.data()), shape, at::kLong)
      .to(device, at::kLong, false, /*copy=*/true);
}
at::Tensor IndexTensor(const std::vector<int32_t>& v, at::IntArrayRef shape, at::Device device) {
  return at::from_blob(const_cast<int32_t*>(v.data()), shape, at::kInt)
      .to(device, at::kLong, false, /*copy=*/true);
}

}  // namespace

at::Tensor Qwen2Model::StepDense(KvCache& cache, const StepPlan& plan) const {
  const int64_t b = plan.batch, s_max = plan.steps, t_max = plan.keys, width = plan.table_width;
  const int64_t n_kv = config_.num_key_value_heads, d = config_.head_dim;
  const auto device = options_.device;
  const at::Tensor ids = IndexTensor(plan.ids, {b, s_max}, device);
  const at::Tensor positions = IndexTensor(plan.positions, {b, s_max}, device);
  const int64_t n_real = static_cast<int64_t>(plan.real_rows.size());
  const at::Tensor real_rows = IndexTensor(plan.real_rows, {n_real}, device);
  const at::Tensor real_blocks = IndexTensor(plan.real_blocks, {n_real}, device);
  const at::Tensor real_lanes = IndexTensor(plan.real_lanes, {n_real}, device);
  const at::Tensor tables = IndexTensor(plan.tables, {b * width}, device);
  // allowed[b, s, t] = t <= position of row s.
  const at::Tensor key = at::arange(t_max, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor allowed =
      (key.view({1, 1, t_max}) <= positions.unsqueeze(-1)).view({b, 1, 1, s_max, t_max});
  const auto [cos, sin] = Rotary(positions);
  at::Tensor x = at::embedding(embed_, ids);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const Projected p =
        Project(layer, RmsNorm(x, layer.input_norm, config_.rms_norm_eps), cos, sin);
    at::Tensor layer_keys =
        cache.keys().select(0, static_cast<int64_t>(i));  // [blocks, nKV, 16, D]
    at::Tensor layer_values = cache.values().select(0, static_cast<int64_t>(i));
    const c10::List<c10::optional<at::Tensor>> where{real_blocks, c10::nullopt, real_lanes};
    layer_keys.index_put_(where, p.k.reshape({b * s_max, n_kv, d}).index_select(0, real_rows));
    layer_values.index_put_(where, p.v.reshape({b * s_max, n_kv, d}).index_select(0, real_rows));
    // Gather each row's blocks into [B, nKV, T, D].
    auto gather = [&](const at::Tensor& pool) {
      return pool.index_select(0, tables)
          .view({b, width, n_kv, KvCache::kBlock, d})
          .permute({0, 2, 1, 3, 4})
          .reshape({b, n_kv, width * KvCache::kBlock, d})
          .narrow(2, 0, t_max);
    };
    x = x + at::linear(AttendDense(p.q, gather(layer_keys), gather(layer_values), allowed),
                       layer.o_weight);
    x = x + Mlp(layer, RmsNorm(x, layer.post_norm, config_.rms_norm_eps));
  }
  const at::Tensor x_last = x.reshape({b * s_max, config_.hidden_size})
                                .index_select(0, IndexTensor(plan.last, {b}, device));
  return at::linear(RmsNorm(x_last, final_norm_, config_.rms_norm_eps), lm_head_).to(at::kFloat);
}

std::vector<int64_t> Qwen2Model::ParameterVersions() const {
  std::vector<int64_t> versions;
  for (const at::Tensor& t : Parameters()) versions.push_back(static_cast<int64_t>(t._version()));
  return versions;
}

std::shared_ptr<const Qwen2Model::Packed> Qwen2Model::CurrentPacking() const {
  std::vector<int64_t> versions = ParameterVersions();
  absl::MutexLock lock(&packed_mu_);
  if (packed_ != nullptr && packed_->versions == versions) return packed_;
  auto packed = std::make_shared<Packed>();
  packed->versions = std::move(versions);
  auto pack = [](const at::Tensor& w) {
    const at::Tensor c = w.contiguous();
    return gemm_cpu::PackedWeight::Pack(c.data_ptr<float>(), c.size(0), c.size(1), c.size(1));
  };
  for (const Layer& layer : layers_) {
    packed->layers.push_back({pack(layer.qkv_weight), pack(layer.o_weight),
                              pack(layer.gate_up_weight), pack(layer.down_weight)});
  }
  packed->lm_head = pack(lm_head_);
  packed_ = packed;
  return packed_;
}

at::Tensor Qwen2Model::StepCpuFp32(KvCache& cache, const StepPlan& plan) const {
  // The same computation as StepDense, with the element-wise chains and the attention
  // products in fused kernels (cpu_kernels.h) and the residual adds folded into addmm.
  const int64_t b = plan.batch, s_max = plan.steps, rows = b * s_max;
  const int64_t n_heads = config_.num_attention_heads, n_kv = config_.num_key_value_heads,
                d = config_.head_dim;
  const int64_t n_rep = n_heads / n_kv, hidden = config_.hidden_size,
                inter = config_.intermediate_size;
  const int64_t qkv_width = (n_heads + 2 * n_kv) * d;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const at::Tensor ids = IndexTensor(plan.ids, {rows}, at::kCPU);
  const at::Tensor positions = IndexTensor(plan.positions, {rows}, at::kCPU);
  auto [cos, sin] = Rotary(positions);  // [rows, D]
  cos = cos.contiguous();
  sin = sin.contiguous();
  const cpu_kernels::AttentionShape shape{
      b, n_kv, n_rep, s_max, d, plan.keys, plan.table_width, qkv_width, n_heads * d};
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));

  // C (+)= A W^T + bias with the packed kernel when the CPU has it, else BLAS.
  const std::shared_ptr<const Packed> packed = gemm_cpu::Available() ? CurrentPacking() : nullptr;
  auto linear = [&](const at::Tensor& a, const at::Tensor& w, const gemm_cpu::PackedWeight* pw,
                    const at::Tensor& bias, at::Tensor* accumulate) {
    if (pw != nullptr) {
      at::Tensor out =
          accumulate != nullptr ? *accumulate : at::empty({a.size(0), w.size(0)}, at::kFloat);
      gemm_cpu::Gemm(a.data_ptr<float>(), a.stride(0), a.size(0), *pw,
                     bias.defined() ? bias.data_ptr<float>() : nullptr, accumulate != nullptr,
                     out.data_ptr<float>(), out.stride(0));
      return out;
    }
    if (accumulate != nullptr) return at::addmm(*accumulate, a, w.t());
    return bias.defined() ? at::addmm(bias, a, w.t()) : at::mm(a, w.t());
  };

  at::Tensor x = at::embedding(embed_, ids);  // [rows, H]
  at::Tensor h = at::empty({rows, hidden}, at::kFloat);
  at::Tensor probs = at::empty({b, n_kv, n_rep * s_max, plan.keys}, at::kFloat);
  at::Tensor attended = at::empty({rows, n_heads * d}, at::kFloat);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const PackedLayer* pl = packed != nullptr ? &packed->layers[i] : nullptr;
    cpu_kernels::RmsNorm(x.data_ptr<float>(), layer.input_norm.data_ptr<float>(), eps, rows, hidden,
                         h.data_ptr<float>());
    at::Tensor qkv = linear(h, layer.qkv_weight, pl ? &pl->qkv : nullptr, layer.qkv_bias, nullptr);
    // RoPE on the q and k heads, which sit side by side at the start of each row.
    cpu_kernels::Rope(qkv.data_ptr<float>(), rows, qkv_width, n_heads + n_kv, d,
                      cos.data_ptr<float>(), sin.data_ptr<float>());
    float* layer_keys = cache.keys().select(0, static_cast<int64_t>(i)).data_ptr<float>();
    float* layer_values = cache.values().select(0, static_cast<int64_t>(i)).data_ptr<float>();
    cpu_kernels::WriteKv(qkv.data_ptr<float>(), qkv_width, n_heads * d, (n_heads + n_kv) * d,
                         plan.real_rows.data(), plan.real_blocks.data(), plan.real_lanes.data(),
                         static_cast<int64_t>(plan.real_rows.size()), n_kv, d, layer_keys,
                         layer_values);
    cpu_kernels::AttentionProbs(shape, qkv.data_ptr<float>(), layer_keys, plan.tables.data(),
                                plan.limits.data(), scale, probs.data_ptr<float>());
    cpu_kernels::AttentionValues(shape, probs.data_ptr<float>(), layer_values, plan.tables.data(),
                                 plan.limits.data(), attended.data_ptr<float>());
    x = linear(attended, layer.o_weight, pl ? &pl->o : nullptr, at::Tensor(), &x);
    cpu_kernels::RmsNorm(x.data_ptr<float>(), layer.post_norm.data_ptr<float>(), eps, rows, hidden,
                         h.data_ptr<float>());
    const at::Tensor gate_up =
        linear(h, layer.gate_up_weight, pl ? &pl->gate_up : nullptr, at::Tensor(), nullptr);
    const at::Tensor act = at::silu(gate_up.narrow(1, 0, inter)) * gate_up.narrow(1, inter, inter);
    x = linear(act, layer.down_weight, pl ? &pl->down : nullptr, at::Tensor(), &x);
  }
  const at::Tensor x_last = x.index_select(0, IndexTensor(plan.last, {b}, at::kCPU));
  at::Tensor normed = at::empty_like(x_last);
  cpu_kernels::RmsNorm(x_last.data_ptr<float>(), final_norm_.data_ptr<float>(), eps, b, hidden,
                       normed.data_ptr<float>());
  return linear(normed, lm_head_, packed ? &packed->lm_head : nullptr, at::Tensor(), nullptr);
}

}  // namespace deepsearch
