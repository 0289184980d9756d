#include "trainer/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/weights/checkpoint_files.h"
#include "common/model/cpu_kernels.h"
#include "common/weights/safetensors.h"
#include "common/model/weight_export.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;

constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kReferenceFile[] = "reference.safetensors";
constexpr char kStateFile[] = "trainer_state.json";
constexpr int kStateFormat = 1;

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string SequenceName(const std::vector<TrainSequence>& batch, size_t i) {
  return absl::StrCat("sequence ", i, " (group '", batch[i].group_id, "')");
}

// A run of consecutive sequences [begin, end) of the batch, padded to the longest, with the
// logits rows that predict its response tokens.
struct MicroBatch {
  size_t begin = 0;
  size_t end = 0;
  at::Tensor ids;              // [n, T] int64, right-padded with 0
  at::Tensor lengths;          // [n] int64
  at::Tensor positions;        // [N] int64: row * T + (prompt - 1 + j) for response token j
  at::Tensor targets;          // [N] int64: the response tokens
  at::Tensor advantages;       // [N] float32 (RL steps)
  at::Tensor behavior;         // [N] float32, NaN where unknown (decoupled RL steps)
  at::Tensor old_logp;         // [N] float32, the proximal policy (RL steps)
  at::Tensor ref_logp;         // [N] float32, the reference policy (kl_coef > 0)
  int64_t tokens = 0;          // response tokens
  int64_t forward_tokens = 0;  // prompt + response tokens
};

int64_t SequenceTokens(const TrainSequence& s) {
  return static_cast<int64_t>(s.prompt_tokens.size() + s.response_tokens.size());
}

// Packs [begin, end) in order: a micro-batch takes sequences while their prompt + response
// tokens stay within `max_tokens`, and always at least one.
std::vector<std::pair<size_t, size_t>> Pack(const std::vector<TrainSequence>& batch, size_t begin,
                                            size_t end, int64_t max_tokens) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t start = begin;
  int64_t used = 0;
  for (size_t i = begin; i < end; ++i) {
    const int64_t n = SequenceTokens(batch[i]);
    if (i > start && used + n > max_tokens) {
      out.emplace_back(start, i);
      start = i;
      used = 0;
    }
    used += n;
  }
  if (start < end) out.emplace_back(start, end);
  return out;
}

at::Tensor LongTensor(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong)
      .clone();
}

at::Tensor FloatTensor(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat)
      .clone();
}

MicroBatch BuildMicroBatch(const std::vector<TrainSequence>& batch, size_t begin, size_t end,
                           const std::vector<std::vector<float>>* advantages, bool behavior,
                           const at::Device& device) {
  MicroBatch mb;
  mb.begin = begin;
  mb.end = end;
  const int64_t n = static_cast<int64_t>(end - begin);
  int64_t t = 0;
  for (size_t i = begin; i < end; ++i) t = std::max(t, SequenceTokens(batch[i]));
  std::vector<int64_t> ids(static_cast<size_t>(n * t), 0), lengths, positions, targets;
  std::vector<float> adv, beh;
  for (size_t i = begin; i < end; ++i) {
    const TrainSequence& s = batch[i];
    const int64_t row = static_cast<int64_t>(i - begin);
    const int64_t p = static_cast<int64_t>(s.prompt_tokens.size());
    const int64_t r = static_cast<int64_t>(s.response_tokens.size());
    int64_t* out = ids.data() + row * t;
    for (int64_t j = 0; j < p; ++j) out[j] = s.prompt_tokens[static_cast<size_t>(j)];
    for (int64_t j = 0; j < r; ++j) {
      out[p + j] = s.response_tokens[static_cast<size_t>(j)];
      positions.push_back(row * t + p - 1 + j);
      targets.push_back(s.response_tokens[static_cast<size_t>(j)]);
    }
    lengths.push_back(p + r);
    if (advantages != nullptr) {
      const std::vector<float>& a = (*advantages)[i];
      adv.insert(adv.end(), a.begin(), a.end());
    }
    if (behavior) {
      if (s.behavior_logprobs.empty()) {
        beh.insert(beh.end(), static_cast<size_t>(r), std::numeric_limits<float>::quiet_NaN());
      } else {
        beh.insert(beh.end(), s.behavior_logprobs.begin(), s.behavior_logprobs.end());
      }
    }
    mb.tokens += r;
    mb.forward_tokens += p + r;
  }
  mb.ids = at::from_blob(ids.data(), {n, t}, at::kLong)
               .to(device, /*non_blocking=*/false,
                   /*copy=*/true);
  mb.lengths = LongTensor(lengths).to(device);
  mb.positions = LongTensor(positions).to(device);
  mb.targets = LongTensor(targets).to(device);
  if (advantages != nullptr) mb.advantages = FloatTensor(adv).to(device);
  if (behavior) mb.behavior = FloatTensor(beh).to(device);
  return mb;
}

// log softmax(logits / temperature)[token] over the first vocab_limit ids, for every response
// token of the micro-batch: [N] float32. Only the rows that predict response tokens are
// normalised, with logsumexp + gather (no full log_softmax).
at::Tensor TokenLogProbs(const Qwen2Model& model, const MicroBatch& mb, int64_t vocab_limit,
                         double temperature) {
  const at::Tensor logits = model.Forward(mb.ids, mb.lengths);
  at::Tensor rows = logits.reshape({-1, logits.size(-1)}).index_select(0, mb.positions);
  if (vocab_limit < rows.size(1)) rows = rows.narrow(1, 0, vocab_limit);
  if (temperature != 1.0) rows = rows / temperature;
  return rows.gather(1, mb.targets.unsqueeze(1)).squeeze(1) - at::logsumexp(rows, {1});
}

// Where a HF-named parameter lies inside the fused storage the optimizer updates.
struct NamedSlot {
  std::string name;
  size_t index = 0;  // into Parameters()
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  int64_t offset = 0;  // storage offset relative to the fused tensor's
};

at::Tensor SlotView(const at::Tensor& fused, const NamedSlot& slot) {
  return fused.as_strided(slot.sizes, slot.strides, fused.storage_offset() + slot.offset);
}

std::string Shape(at::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ", "), "]");
}

absl::Status WriteTensors(const std::string& path,
                          const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::vector<at::Tensor> keep_alive;
  std::vector<TensorToWrite> tensors;
  keep_alive.reserve(named.size());
  for (const auto& [name, tensor] : named) {
    const at::Tensor cpu = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    keep_alive.push_back(cpu);
    tensors.push_back(
        TensorToWrite{name, Dtype::kF32, cpu.sizes().vec(),
                      absl::Span<const uint8_t>(static_cast<const uint8_t*>(cpu.data_ptr()),
                                                static_cast<size_t>(cpu.nbytes()))});
  }
  return WriteSafetensors(path, std::move(tensors), {{"format", "pt"}});
}

// Views of `file`'s tensors in the order of `expected` (name, shape), after checking that the
// file holds exactly those names, each with its shape and a floating-point dtype. The views
// live as long as `file`.
absl::StatusOr<std::vector<at::Tensor>> ReadTensors(
    const SafetensorsFile& file,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected) {
  std::vector<std::string> names, present;
  for (const auto& [name, shape] : expected) names.push_back(name);
  for (const SafetensorsFile::TensorView& t : file.tensors()) present.push_back(t.name);
  DS_RETURN_IF_ERROR(Annotate(CheckTensorNames(names, present), file.source()));
  std::vector<at::Tensor> out;
  for (const auto& [name, shape] : expected) {
    const SafetensorsFile::TensorView* view = file.Find(name);
    if (view->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(file.source(), ": tensor ", name,
                                                     ": expected ", Shape(shape), ", got ",
                                                     Shape(view->shape)));
    }
    const absl::StatusOr<at::ScalarType> dtype = TorchDtype(view->dtype, name);
    if (!dtype.ok()) return Annotate(dtype.status(), file.source());
    out.push_back(at::from_blob(const_cast<uint8_t*>(view->data), view->shape,
                                at::TensorOptions().dtype(*dtype)));
  }
  return out;
}

std::string AdvantageNormName(AdvantageNorm norm) {
  return norm == AdvantageNorm::kMeanStd ? "mean_std" : "mean";
}

nlohmann::json ConfigJson(const TrainerConfig& c) {
  nlohmann::json j;
  j["lr"] = c.lr;
  j["warmup_steps"] = c.warmup_steps;
  j["weight_decay"] = c.weight_decay;
  j["beta1"] = c.beta1;
  j["beta2"] = c.beta2;
  j["adam_eps"] = c.adam_eps;
  j["grad_clip"] = c.grad_clip;
  j["mini_batches"] = c.mini_batches;
  j["micro_batch_tokens"] = c.micro_batch_tokens;
  j["compute_dtype"] = c.compute_dtype;
  j["temperature"] = c.temperature;
  j["vocab_limit"] = c.vocab_limit;
  j["advantage_norm"] = AdvantageNormName(c.advantage_norm);
  j["clip_low"] = c.loss.clip_low;
  j["clip_high"] = c.loss.clip_high;
  j["clip_c"] = c.loss.clip_c;
  j["kl_coef"] = c.loss.kl_coef;
  j["is_cap"] = c.loss.is_cap;
  j["decoupled"] = c.decoupled;
  return j;
}

absl::Status CheckConfig(const TrainerConfig& c, const Qwen2Config& model) {
  auto bad = [](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("trainer config: ", std::string(what)));
  };
  if (!(c.lr >= 0)) return bad(absl::StrCat("lr must be >= 0, got ", c.lr));
  if (c.warmup_steps < 0)
    return bad(absl::StrCat("warmup_steps must be >= 0, got ", c.warmup_steps));
  if (!(c.weight_decay >= 0))
    return bad(absl::StrCat("weight_decay must be >= 0, got ", c.weight_decay));
  if (!(c.beta1 >= 0 && c.beta1 < 1))
    return bad(absl::StrCat("beta1 must be in [0, 1), got ", c.beta1));
  if (!(c.beta2 >= 0 && c.beta2 < 1))
    return bad(absl::StrCat("beta2 must be in [0, 1), got ", c.beta2));
  if (!(c.adam_eps > 0)) return bad(absl::StrCat("adam_eps must be > 0, got ", c.adam_eps));
  if (c.mini_batches < 1)
    return bad(absl::StrCat("mini_batches must be >= 1, got ", c.mini_batches));
  if (c.micro_batch_tokens < 1)
    return bad(absl::StrCat("micro_batch_tokens must be >= 1, got ", c.micro_batch_tokens));
  if (!(c.temperature > 0))
    return bad(absl::StrCat("temperature must be > 0, got ", c.temperature));
  if (c.vocab_limit < 0 || c.vocab_limit > model.vocab_size) {
    return bad(
        absl::StrCat("vocab_limit must be in [0, ", model.vocab_size, "], got ", c.vocab_limit));
  }
  if (c.compute_dtype != "float32" && c.compute_dtype != "bfloat16")
    return bad(
        absl::StrCat("compute_dtype must be float32 or bfloat16, got '", c.compute_dtype, "'"));
  if (!(c.loss.clip_low >= 0 && c.loss.clip_low < 1))
    return bad(absl::StrCat("loss.clip_low must be in [0, 1), got ", c.loss.clip_low));
  if (!(c.loss.clip_high >= 0))
    return bad(absl::StrCat("loss.clip_high must be >= 0, got ", c.loss.clip_high));
  if (!(c.loss.clip_c > 1))
    return bad(absl::StrCat("loss.clip_c must be > 1, got ", c.loss.clip_c));
  if (!(c.loss.kl_coef >= 0))
    return bad(absl::StrCat("loss.kl_coef must be >= 0, got ", c.loss.kl_coef));
  if (!(c.loss.is_cap > 0))
    return bad(absl::StrCat("loss.is_cap must be > 0, got ", c.loss.is_cap));
  return absl::OkStatus();
}

}  // namespace

double ClipGradNorm(const std::vector<at::Tensor>& grads, double max_norm) {
  c10::NoGradGuard no_grad;
  double sum_sq = 0.0;
  for (const at::Tensor& g : grads) {
    const double n = at::norm(g).item<double>();
    sum_sq += n * n;
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      for (const at::Tensor& g : grads) g.mul_(coef);
    }
  }
  return norm;
}

void AdamWUpdate(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                 const at::Tensor& exp_avg_sq, int64_t t, double lr, const TrainerConfig& config) {
  c10::NoGradGuard no_grad;
  const double bc1 = 1.0 - std::pow(config.beta1, static_cast<double>(t));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(config.beta2, static_cast<double>(t)));
  const std::array<const at::Tensor*, 4> all = {&param, &grad, &exp_avg, &exp_avg_sq};
  if (std::all_of(all.begin(), all.end(), [&](const at::Tensor* x) {
        return x->device().is_cpu() && x->scalar_type() == at::kFloat && x->is_contiguous() &&
               x->numel() == param.numel();
      })) {
    // One pass over the four tensors instead of ATen's nine.
    cpu_kernels::AdamW(param.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                       exp_avg_sq.data_ptr<float>(), param.numel(),
                       {.decay = static_cast<float>(1.0 - lr * config.weight_decay),
                        .beta1 = static_cast<float>(config.beta1),
                        .beta2 = static_cast<float>(config.beta2),
                        .one_minus_beta1 = static_cast<float>(1.0 - config.beta1),
                        .one_minus_beta2 = static_cast<float>(1.0 - config.beta2),
                        .step = static_cast<float>(-lr / bc1),
                        .bias2_sqrt = static_cast<float>(bc2_sqrt),
                        .eps = static_cast<float>(config.adam_eps)});
    param.unsafeGetTensorImpl()->bump_version();
    exp_avg.unsafeGetTensorImpl()->bump_version();
    exp_avg_sq.unsafeGetTensorImpl()->bump_version();
    return;
  }
  param.mul_(1.0 - lr * config.weight_decay);
  exp_avg.mul_(config.beta1).add_(grad, 1.0 - config.beta1);
  exp_avg_sq.mul_(config.beta2).addcmul_(grad, grad, 1.0 - config.beta2);
  const at::Tensor denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(config.adam_eps);
  param.addcdiv_(exp_avg, denom, -lr / bc1);
}

struct Trainer::Impl {
  TrainerConfig config;
  std::unique_ptr<Qwen2Model> model;      // the float32 master weights
  std::unique_ptr<Qwen2Model> low;        // the bfloat16 compute copy, or null
  std::unique_ptr<Qwen2Model> reference;  // frozen, in the compute dtype (kl_coef > 0)
  std::vector<at::Tensor> params;         // the master's Parameters()
  std::vector<at::Tensor> low_params;     // the compute copy's, in the same order
  std::vector<at::Tensor> low_grads;      // float32 accumulators of the copy's gradients
  std::vector<at::Tensor> exp_avg, exp_avg_sq;
  std::vector<NamedSlot> slots;  // the HF names of the master's parameters
  int64_t vocab_limit = 0;
  int64_t step = 0;             // training steps taken
  int64_t optimizer_steps = 0;  // AdamW's t

  const Qwen2Model& compute() const { return low ? *low : *model; }
  int rank() const { return config.reducer != nullptr ? config.reducer->rank() : 0; }
  int world() const { return config.reducer != nullptr ? config.reducer->world_size() : 1; }

  absl::Status Validate(const std::vector<TrainSequence>& batch, bool supervised) const;
  void RefreshCompute();
  void ZeroGrads();
  // After a micro-batch's backward: moves the copy's gradients into the float32 sums.
  void AccumulateLowGrads();
  // All-reduces (with a reducer), clips and applies AdamW at `lr`. Returns the gradient norm
  // before clipping; a non-finite norm skips the update, as veRL does.
  absl::StatusOr<double> OptimizerStep(double lr);
  // The global response-token count of [begin, end) (summed over ranks) and the world size.
  absl::StatusOr<std::pair<double, double>> GlobalTokens(int64_t local);
  std::vector<std::pair<std::string, at::Tensor>> Named(const std::vector<at::Tensor>& fused,
                                                        std::string_view prefix) const;
};

absl::Status Trainer::Impl::Validate(const std::vector<TrainSequence>& batch,
                                     bool supervised) const {
  if (batch.empty()) return absl::InvalidArgumentError("empty batch");
  const Qwen2Config& c = model->config();
  for (size_t i = 0; i < batch.size(); ++i) {
    const TrainSequence& s = batch[i];
    auto bad = [&](std::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat(SequenceName(batch, i), ": ", std::string(what)));
    };
    const size_t r = s.response_tokens.size();
    if (s.prompt_tokens.empty()) return bad("empty prompt");
    if (r == 0) return bad("empty response");
    if (SequenceTokens(s) > c.max_position_embeddings) {
      return bad(absl::StrCat(SequenceTokens(s), " tokens exceed the model's context of ",
                              c.max_position_embeddings));
    }
    if (!supervised && s.token_scores.size() != r)
      return bad(absl::StrCat(s.token_scores.size(), " token scores for ", r, " response tokens"));
    if (!s.behavior_logprobs.empty() && s.behavior_logprobs.size() != r) {
      return bad(absl::StrCat(s.behavior_logprobs.size(), " behaviour log-probs for ", r,
                              " response tokens"));
    }
    for (size_t j = 0; j < s.prompt_tokens.size(); ++j) {
      if (s.prompt_tokens[j] < 0 || s.prompt_tokens[j] >= c.vocab_size)
        return bad(absl::StrCat("prompt token ", j, " is ", s.prompt_tokens[j], ", outside [0, ",
                                c.vocab_size, ")"));
    }
    for (size_t j = 0; j < r; ++j) {
      if (s.response_tokens[j] < 0 || s.response_tokens[j] >= vocab_limit)
        return bad(absl::StrCat("response token ", j, " is ", s.response_tokens[j],
                                ", outside [0, ", vocab_limit, ")"));
    }
    if (!supervised) {
      if (!std::isfinite(s.final_score)) return bad("non-finite final score");
      for (size_t j = 0; j < r; ++j) {
        if (!std::isfinite(s.token_scores[j]))
          return bad(absl::StrCat("non-finite score at response token ", j));
      }
      for (size_t j = 0; j < s.behavior_logprobs.size(); ++j) {
        if (!std::isfinite(s.behavior_logprobs[j]))
          return bad(absl::StrCat("non-finite behaviour log-prob at response token ", j));
      }
    }
  }
  return absl::OkStatus();
}

void Trainer::Impl::RefreshCompute() {
  if (!low) return;
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) low_params[i].copy_(params[i]);
}

void Trainer::Impl::ZeroGrads() {
  for (const at::Tensor& p : params) p.mutable_grad().reset();
  for (const at::Tensor& p : low_params) p.mutable_grad().reset();
  for (at::Tensor& g : low_grads) g.zero_();
}

void Trainer::Impl::AccumulateLowGrads() {
  if (!low) return;
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < low_params.size(); ++i) {
    at::Tensor& g = low_params[i].mutable_grad();
    if (!g.defined()) continue;
    low_grads[i].add_(g.to(at::kFloat));
    g.reset();
  }
}

absl::StatusOr<std::pair<double, double>> Trainer::Impl::GlobalTokens(int64_t local) {
  std::vector<double> values = {static_cast<double>(local)};
  double world = 1.0;
  if (config.reducer != nullptr) {
    DS_RETURN_IF_ERROR(config.reducer->AllReduceSum(values));
    world = config.reducer->world_size();
  }
  return std::make_pair(values[0], world);
}

absl::StatusOr<double> Trainer::Impl::OptimizerStep(double lr) {
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    if (low) {
      grads.push_back(low_grads[i]);
    } else {
      const at::Tensor& g = params[i].grad();
      grads.push_back(g.defined() ? g : at::zeros_like(params[i]));
    }
  }
  if (config.reducer != nullptr) DS_RETURN_IF_ERROR(config.reducer->AllReduceMean(grads));

  const double norm = ClipGradNorm(grads, config.grad_clip);
  if (!std::isfinite(norm)) {
    log::Warning("gradient norm is {}: optimizer step skipped", norm);
    return norm;
  }
  ++optimizer_steps;
  for (size_t i = 0; i < params.size(); ++i)
    AdamWUpdate(params[i], grads[i], exp_avg[i], exp_avg_sq[i], optimizer_steps, lr, config);
  return norm;
}

std::vector<std::pair<std::string, at::Tensor>> Trainer::Impl::Named(
    const std::vector<at::Tensor>& fused, std::string_view prefix) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.reserve(slots.size());
  for (const NamedSlot& slot : slots)
    out.emplace_back(absl::StrCat(std::string(prefix), slot.name),
                     SlotView(fused[slot.index], slot));
  return out;
}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(std::unique_ptr<Qwen2Model> model,
                                                         TrainerConfig config) {
  if (model == nullptr) return absl::InvalidArgumentError("Trainer::Create: no model");
  if (model->options().dtype != at::kFloat) {
    return absl::InvalidArgumentError(
        absl::StrCat("the trainer's master weights must be float32, got ",
                     c10::toString(model->options().dtype)));
  }
  DS_RETURN_IF_ERROR(CheckConfig(config, model->config()));
  auto impl = std::make_unique<Impl>();
  impl->vocab_limit = config.vocab_limit > 0 ? config.vocab_limit : model->config().vocab_size;
  impl->config = std::move(config);
  impl->model = std::move(model);
  try {
    c10::NoGradGuard no_grad;
    impl->params = impl->model->Parameters();
    for (const at::Tensor& p : impl->params) {
      impl->exp_avg.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous));
      impl->exp_avg_sq.push_back(at::zeros_like(p, at::MemoryFormat::Contiguous));
    }
    for (const auto& [name, view] : impl->model->NamedParameters()) {
      size_t index = impl->params.size();
      for (size_t i = 0; i < impl->params.size(); ++i) {
        if (view.is_alias_of(impl->params[i])) index = i;
      }
      DS_CHECK(index < impl->params.size()) << name << " is not a view of any parameter";
      DS_CHECK(impl->params[index].is_contiguous()) << name << ": fused storage not contiguous";
      impl->slots.push_back({name, index, view.sizes().vec(), view.strides().vec(),
                             view.storage_offset() - impl->params[index].storage_offset()});
    }
    const ModelOptions& options = impl->model->options();
    const at::ScalarType compute_dtype =
        impl->config.compute_dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
    auto copy = [&]() -> absl::StatusOr<std::unique_ptr<Qwen2Model>> {
      DS_ASSIGN_OR_RETURN(std::unique_ptr<Qwen2Model> m,
                          Qwen2Model::Create(impl->model->config(),
                                             {.dtype = compute_dtype, .device = options.device}));
      const std::vector<at::Tensor> dst = m->Parameters();
      for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(impl->params[i]);
      return m;
    };
    if (compute_dtype != at::kFloat) {
      DS_ASSIGN_OR_RETURN(impl->low, copy());
      impl->low_params = impl->low->Parameters();
      for (const at::Tensor& p : impl->params) impl->low_grads.push_back(at::zeros_like(p));
      for (at::Tensor& p : impl->low_params) p.requires_grad_(true);
    } else {
      for (at::Tensor& p : impl->params) p.requires_grad_(true);
    }
    if (impl->config.loss.kl_coef > 0) {
      DS_ASSIGN_OR_RETURN(impl->reference, copy());
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("Trainer::Create: ", e.what_without_backtrace()));
  }
  return std::unique_ptr<Trainer>(new Trainer(std::move(impl)));
}

const Qwen2Model& Trainer::model() const { return *impl_->model; }
const TrainerConfig& Trainer::config() const { return impl_->config; }
int64_t Trainer::step() const { return impl_->step; }

double Trainer::LearningRate(int64_t step) const {
  const TrainerConfig& c = impl_->config;
  if (c.warmup_steps <= 0) return c.lr;
  return c.lr * static_cast<double>(std::min<int64_t>(step, c.warmup_steps)) /
         static_cast<double>(c.warmup_steps);
}

absl::StatusOr<TrainStepStats> Trainer::Step(const std::vector<TrainSequence>& batch) {
  Impl& m = *impl_;
  DS_RETURN_IF_ERROR(m.Validate(batch, /*supervised=*/false));
  const double start = Seconds();
  const TrainerConfig& c = m.config;
  TrainStepStats stats;
  stats.step = m.step;
  stats.lr = LearningRate(m.step);
  stats.sequences = static_cast<int64_t>(batch.size());
  try {
    // This rank's part of the step (all of it in one process), mini-batch by mini-batch.
    const StepPlan plan = PlanStep(batch, c.advantage_norm, c.mini_batches, m.rank(), m.world());
    const size_t parts = plan.mini_batches.size();
    std::vector<TrainSequence> local;
    std::vector<std::vector<float>> advantages;
    std::vector<size_t> ends;
    double adv_sum = 0.0;
    for (const std::vector<size_t>& mini : plan.mini_batches) {
      for (size_t i : mini) {
        local.push_back(batch[i]);
        advantages.push_back(plan.advantages[i]);
        for (float a : plan.advantages[i]) adv_sum += a;
        stats.mean_final_score += batch[i].final_score;
      }
      ends.push_back(local.size());
    }
    stats.sequences = static_cast<int64_t>(local.size());
    if (!local.empty()) stats.mean_final_score /= static_cast<double>(local.size());

    // The mini-batches, each packed into micro-batches.
    const at::Device device = m.model->options().device;
    std::vector<std::vector<MicroBatch>> minis(parts);
    for (size_t k = 0; k < parts; ++k) {
      for (const auto& [b, e] :
           Pack(local, k == 0 ? 0 : ends[k - 1], ends[k], c.micro_batch_tokens))
        minis[k].push_back(BuildMicroBatch(local, b, e, &advantages, c.decoupled, device));
    }

    // The proximal policy (and the reference): the weights at the start of the step. With one
    // mini-batch they are the weights of its training forward, whose log-probs (detached)
    // serve as the proximal ones: the separate no-grad forward would compute the same values.
    const bool proximal_from_training = parts == 1;
    m.RefreshCompute();
    {
      c10::NoGradGuard no_grad;
      for (std::vector<MicroBatch>& mini : minis) {
        for (MicroBatch& mb : mini) {
          if (!proximal_from_training) {
            mb.old_logp = TokenLogProbs(m.compute(), mb, m.vocab_limit, c.temperature);
            if (c.decoupled)
              mb.behavior = at::where(at::isnan(mb.behavior), mb.old_logp, mb.behavior);
          }
          if (m.reference)
            mb.ref_logp = TokenLogProbs(*m.reference, mb, m.vocab_limit, c.temperature);
        }
      }
    }

    double loss_sum = 0, clip_sum = 0, dual_sum = 0, kl_sum = 0, norm_sum = 0;
    for (size_t k = 0; k < parts; ++k) {
      if (k > 0) m.RefreshCompute();
      int64_t local = 0;
      for (const MicroBatch& mb : minis[k]) local += mb.tokens;
      DS_ASSIGN_OR_RETURN(const auto global, m.GlobalTokens(local));
      const double scale = global.second / std::max(global.first, 1.0);
      m.ZeroGrads();
      double mini_loss = 0;
      for (MicroBatch& mb : minis[k]) {
        const at::Tensor logp = TokenLogProbs(m.compute(), mb, m.vocab_limit, c.temperature);
        if (proximal_from_training) {
          mb.old_logp = logp.detach();
          if (c.decoupled)
            mb.behavior = at::where(at::isnan(mb.behavior), mb.old_logp, mb.behavior);
        }
        const at::Tensor ones = at::ones_like(logp);
        PolicyLossStats ls;
        const at::Tensor loss = PolicyLoss(
            logp.unsqueeze(0), mb.old_logp.unsqueeze(0), mb.advantages.unsqueeze(0),
            ones.unsqueeze(0), c.loss, c.decoupled ? mb.behavior.unsqueeze(0) : at::Tensor(),
            mb.ref_logp.defined() ? mb.ref_logp.unsqueeze(0) : at::Tensor(), &ls);
        // The micro-batch's token-mean times its share of the mini-batch's (global) tokens:
        // the sum of the micro-batches is the token-mean over the whole mini-batch.
        (loss * (static_cast<double>(mb.tokens) * scale)).backward();
        m.AccumulateLowGrads();
        const double w = static_cast<double>(mb.tokens);
        mini_loss += ls.loss * w;
        clip_sum += ls.clip_fraction * w;
        dual_sum += ls.dual_clip_fraction * w;
        kl_sum += ls.approx_kl * w;
        stats.tokens += mb.tokens;
        stats.forward_tokens += mb.forward_tokens;
      }
      loss_sum += mini_loss / static_cast<double>(std::max<int64_t>(local, 1));
      DS_ASSIGN_OR_RETURN(const double norm, m.OptimizerStep(stats.lr));
      norm_sum += norm;
      ++stats.optimizer_steps;
    }
    m.ZeroGrads();
    const double tokens = static_cast<double>(std::max<int64_t>(stats.tokens, 1));
    stats.loss = loss_sum / static_cast<double>(parts);
    stats.grad_norm = norm_sum / static_cast<double>(parts);
    stats.clip_fraction = clip_sum / tokens;
    stats.dual_clip_fraction = dual_sum / tokens;
    stats.approx_kl = kl_sum / tokens;
    stats.mean_advantage = adv_sum / tokens;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("training step ", m.step, ": ", e.what_without_backtrace()));
  }
  ++m.step;
  stats.seconds = Seconds() - start;
  return stats;
}

absl::StatusOr<TrainStepStats> Trainer::SupervisedStep(const std::vector<TrainSequence>& batch) {
  Impl& m = *impl_;
  DS_RETURN_IF_ERROR(m.Validate(batch, /*supervised=*/true));
  const double start = Seconds();
  const TrainerConfig& c = m.config;
  TrainStepStats stats;
  stats.step = m.step;
  stats.lr = LearningRate(m.step);
  stats.sequences = static_cast<int64_t>(batch.size());
  try {
    const at::Device device = m.model->options().device;
    const StepPlan plan = PlanStep(batch, AdvantageNorm::kMeanOnly, 1, m.rank(), m.world());
    std::vector<TrainSequence> mine;
    for (size_t i : plan.mini_batches.at(0)) mine.push_back(batch[i]);
    stats.sequences = static_cast<int64_t>(mine.size());
    std::vector<MicroBatch> micro;
    for (const auto& [b, e] : Pack(mine, 0, mine.size(), c.micro_batch_tokens))
      micro.push_back(BuildMicroBatch(mine, b, e, nullptr, false, device));
    int64_t local = 0;
    for (const MicroBatch& mb : micro) local += mb.tokens;
    DS_ASSIGN_OR_RETURN(const auto global, m.GlobalTokens(local));
    const double scale = global.second / std::max(global.first, 1.0);
    m.RefreshCompute();
    m.ZeroGrads();
    double nll = 0;
    for (const MicroBatch& mb : micro) {
      const at::Tensor sum = -TokenLogProbs(m.compute(), mb, m.vocab_limit, c.temperature).sum();
      (sum * scale).backward();
      m.AccumulateLowGrads();
      nll += sum.item<double>();
      stats.tokens += mb.tokens;
      stats.forward_tokens += mb.forward_tokens;
    }
    DS_ASSIGN_OR_RETURN(stats.grad_norm, m.OptimizerStep(stats.lr));
    m.ZeroGrads();
    stats.optimizer_steps = 1;
    stats.loss = nll / static_cast<double>(std::max<int64_t>(local, 1));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("supervised step ", m.step, ": ", e.what_without_backtrace()));
  }
  ++m.step;
  stats.seconds = Seconds() - start;
  return stats;
}

absl::Status Trainer::SyncWithRankZero() {
  Impl& m = *impl_;
  if (m.world() <= 1) return absl::OkStatus();
  GradientReducer& reducer = *m.config.reducer;
  try {
    c10::NoGradGuard no_grad;
    // Same architecture and same update on every rank, or no rank goes on.
    const std::vector<int64_t> mine = {static_cast<int64_t>(Hash64(m.model->config().ToJson())),
                                       static_cast<int64_t>(Hash64(ConfigJson(m.config).dump()))};
    std::vector<at::Tensor> fingerprint = {LongTensor(mine)};
    DS_RETURN_IF_ERROR(reducer.Broadcast(fingerprint));
    std::vector<double> differ = {fingerprint[0][0].item<int64_t>() != mine[0] ? 1.0 : 0.0,
                                  fingerprint[0][1].item<int64_t>() != mine[1] ? 1.0 : 0.0};
    const bool model_differs = differ[0] > 0, trainer_differs = differ[1] > 0;
    DS_RETURN_IF_ERROR(reducer.AllReduceSum(differ));
    if (differ[0] > 0 || differ[1] > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data parallel rank ", reducer.rank(), " of ", reducer.world_size(), ": ",
          differ[0] > 0 ? absl::StrCat(differ[0], " rank(s) have another model architecture") : "",
          differ[0] > 0 && differ[1] > 0 ? " and " : "",
          differ[1] > 0 ? absl::StrCat(differ[1],
                                       " rank(s) other trainer settings (learner.train, "
                                       "learner.mode)")
                        : "",
          " than rank 0", model_differs || trainer_differs ? "; this rank is one of them" : ""));
    }
    // Rank 0's weights, moments, reference and counters.
    std::vector<at::Tensor> state = m.params;
    state.insert(state.end(), m.exp_avg.begin(), m.exp_avg.end());
    state.insert(state.end(), m.exp_avg_sq.begin(), m.exp_avg_sq.end());
    if (m.reference) {
      for (const at::Tensor& p : m.reference->Parameters()) state.push_back(p);
    }
    state.push_back(LongTensor({m.step, m.optimizer_steps}));
    DS_RETURN_IF_ERROR(reducer.Broadcast(state));
    m.step = state.back()[0].item<int64_t>();
    m.optimizer_steps = state.back()[1].item<int64_t>();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("synchronising with rank 0: ", e.what_without_backtrace()));
  }
  m.RefreshCompute();
  return absl::OkStatus();
}

absl::Status Trainer::Save(const std::string& dir) const {
  const Impl& m = *impl_;
  c10::NoGradGuard no_grad;
  const fs::path target = fs::absolute(fs::path(dir)).lexically_normal();
  const fs::path temp = fs::path(target.string() + ".tmp." + std::to_string(::getpid()));
  std::error_code error;
  fs::remove_all(temp, error);
  fs::create_directories(temp, error);
  if (error)
    return absl::InternalError(
        absl::StrCat("cannot create ", temp.string(), ": ", error.message()));
  try {
    DS_RETURN_IF_ERROR(WriteTensors((temp / kModelFile).string(), m.Named(m.params, "")));
    std::vector<std::pair<std::string, at::Tensor>> moments = m.Named(m.exp_avg, "exp_avg.");
    for (auto& named : m.Named(m.exp_avg_sq, "exp_avg_sq.")) moments.push_back(std::move(named));
    DS_RETURN_IF_ERROR(WriteTensors((temp / kOptimizerFile).string(), moments));
    if (m.reference) {
      DS_RETURN_IF_ERROR(
          WriteTensors((temp / kReferenceFile).string(), m.Named(m.reference->Parameters(), "")));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("saving ", dir, ": ", e.what_without_backtrace()));
  }
  nlohmann::json state;
  state["format"] = kStateFormat;
  state["step"] = m.step;
  state["optimizer_steps"] = m.optimizer_steps;
  state["config"] = ConfigJson(m.config);
  const std::string text = state.dump(2) + "\n";
  DS_RETURN_IF_ERROR(WriteFileAtomically((temp / kStateFile).string(), text));

  // Swap into place: the previous checkpoint (if any) moves aside, the new one takes its name.
  const fs::path old = fs::path(target.string() + ".old." + std::to_string(::getpid()));
  fs::remove_all(old, error);
  if (fs::exists(target)) {
    fs::rename(target, old, error);
    if (error)
      return absl::InternalError(
          absl::StrCat("cannot move ", target.string(), " aside: ", error.message()));
  }
  fs::rename(temp, target, error);
  if (error)
    return absl::InternalError(
        absl::StrCat("cannot rename ", temp.string(), ": ", error.message()));
  fs::remove_all(old, error);
  return absl::OkStatus();
}

absl::Status Trainer::Load(const std::string& dir) {
  Impl& m = *impl_;
  const fs::path root(dir);
  if (!fs::is_directory(root))
    return absl::NotFoundError(absl::StrCat("checkpoint directory ", dir, " does not exist"));

  // trainer_state.json
  const fs::path state_path = root / kStateFile;
  DS_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(state_path.string()));
  const nlohmann::json state = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  int64_t step = 0, optimizer_steps = 0;
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"step", &step},
                          std::pair<const char*, int64_t*>{"optimizer_steps", &optimizer_steps}}) {
    if (!state.is_object() || !state.contains(key) || !state[key].is_number_integer() ||
        state[key].get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(state_path.string(), ": expected a non-negative integer \"", key, "\""));
    }
    *out = state[key].get<int64_t>();
  }

  // Every file is checked before anything is copied.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected, expected_moments;
  for (const NamedSlot& slot : m.slots) expected.emplace_back(slot.name, slot.sizes);
  for (const char* prefix : {"exp_avg.", "exp_avg_sq."}) {
    for (const NamedSlot& slot : m.slots)
      expected_moments.emplace_back(absl::StrCat(prefix, slot.name), slot.sizes);
  }
  DS_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> model_file,
                      SafetensorsFile::Open((root / kModelFile).string()));
  DS_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> optimizer_file,
                      SafetensorsFile::Open((root / kOptimizerFile).string()));
  std::unique_ptr<SafetensorsFile> reference_file;
  if (m.reference) {
    DS_ASSIGN_OR_RETURN(reference_file, SafetensorsFile::Open((root / kReferenceFile).string()));
  }
  DS_ASSIGN_OR_RETURN(const std::vector<at::Tensor> weights, ReadTensors(*model_file, expected));
  DS_ASSIGN_OR_RETURN(const std::vector<at::Tensor> moments,
                      ReadTensors(*optimizer_file, expected_moments));
  std::vector<at::Tensor> reference;
  if (reference_file) {
    DS_ASSIGN_OR_RETURN(reference, ReadTensors(*reference_file, expected));
  }

  try {
    c10::NoGradGuard no_grad;
    const auto params = m.Named(m.params, "");
    const auto avg = m.Named(m.exp_avg, "");
    const auto avg_sq = m.Named(m.exp_avg_sq, "");
    const size_t k = m.slots.size();
    for (size_t i = 0; i < k; ++i) {
      params[i].second.copy_(weights[i]);
      avg[i].second.copy_(moments[i]);
      avg_sq[i].second.copy_(moments[k + i]);
    }
    if (m.reference) {
      const auto ref = m.Named(m.reference->Parameters(), "");
      for (size_t i = 0; i < k; ++i) ref[i].second.copy_(reference[i]);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("loading ", dir, ": ", e.what_without_backtrace()));
  }
  m.step = step;
  m.optimizer_steps = optimizer_steps;
  m.RefreshCompute();
  return absl::OkStatus();
}

}  // namespace deepsearch
