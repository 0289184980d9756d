// The trainer's creation and its steps; its checkpoints are trainer_state.cc.
#include "trainer/trainer.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "trainer/trainer_impl.h"

#include "common/core/logging.h"
#include "common/core/status.h"
#include "common/model/cpu_kernels.h"

namespace deepsearch {
namespace {

using trainer_internal::LongTensor;
using trainer_internal::MicroBatch;
using trainer_internal::NamedSlot;

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string SequenceName(const std::vector<TrainSequence>& batch, size_t i) {
  return absl::StrCat("sequence ", i, " (group '", batch[i].group_id, "')");
}

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

std::vector<std::vector<MicroBatch>> Trainer::Impl::PackMiniBatches(
    const std::vector<TrainSequence>& batch, const StepPlan& plan, TrainStepStats* stats,
    double* adv_sum) const {
  std::vector<TrainSequence> local;
  std::vector<std::vector<float>> advantages;
  std::vector<size_t> ends;
  double score_sum = 0.0;
  for (const std::vector<size_t>& mini : plan.mini_batches) {
    for (size_t i : mini) {
      local.push_back(batch[i]);
      advantages.push_back(plan.advantages[i]);
      for (float a : plan.advantages[i]) *adv_sum += a;
      score_sum += batch[i].final_score;
    }
    ends.push_back(local.size());
  }
  stats->sequences = static_cast<int64_t>(local.size());
  if (!local.empty()) stats->mean_final_score = score_sum / static_cast<double>(local.size());
  const at::Device device = model->options().device;
  std::vector<std::vector<MicroBatch>> minis(ends.size());
  for (size_t k = 0; k < ends.size(); ++k) {
    for (const auto& [b, e] :
         Pack(local, k == 0 ? 0 : ends[k - 1], ends[k], config.micro_batch_tokens))
      minis[k].push_back(BuildMicroBatch(local, b, e, &advantages, config.decoupled, device));
  }
  return minis;
}

void Trainer::Impl::SetProximal(MicroBatch& mb, const at::Tensor& logp) const {
  mb.old_logp = logp;
  if (config.decoupled) mb.behavior = at::where(at::isnan(mb.behavior), mb.old_logp, mb.behavior);
}

void Trainer::Impl::StartLogProbs(std::vector<std::vector<MicroBatch>>& minis,
                                  bool proximal_from_training) const {
  c10::NoGradGuard no_grad;
  for (std::vector<MicroBatch>& mini : minis) {
    for (MicroBatch& mb : mini) {
      if (!proximal_from_training)
        SetProximal(mb, TokenLogProbs(compute(), mb, vocab_limit, config.temperature));
      if (reference) mb.ref_logp = TokenLogProbs(*reference, mb, vocab_limit, config.temperature);
    }
  }
}

absl::Status Trainer::Impl::TrainMiniBatch(std::vector<MicroBatch>& mini,
                                           bool proximal_from_training, TrainStepStats* stats,
                                           StepSums* sums) {
  const TrainerConfig& c = config;
  int64_t local = 0;
  for (const MicroBatch& mb : mini) local += mb.tokens;
  DS_ASSIGN_OR_RETURN(const auto global, GlobalTokens(local));
  const double scale = global.second / std::max(global.first, 1.0);
  ZeroGrads();
  double mini_loss = 0;
  for (MicroBatch& mb : mini) {
    const at::Tensor logp = TokenLogProbs(compute(), mb, vocab_limit, c.temperature);
    if (proximal_from_training) SetProximal(mb, logp.detach());
    const at::Tensor ones = at::ones_like(logp);
    PolicyLossStats ls;
    const at::Tensor loss =
        PolicyLoss(logp.unsqueeze(0), mb.old_logp.unsqueeze(0), mb.advantages.unsqueeze(0),
                   ones.unsqueeze(0), c.loss, c.decoupled ? mb.behavior.unsqueeze(0) : at::Tensor(),
                   mb.ref_logp.defined() ? mb.ref_logp.unsqueeze(0) : at::Tensor(), &ls);
    // The micro-batch's token-mean times its share of the mini-batch's (global) tokens: the
    // sum of the micro-batches is the token-mean over the whole mini-batch.
    (loss * (static_cast<double>(mb.tokens) * scale)).backward();
    AccumulateLowGrads();
    const double w = static_cast<double>(mb.tokens);
    mini_loss += ls.loss * w;
    sums->clip += ls.clip_fraction * w;
    sums->dual_clip += ls.dual_clip_fraction * w;
    sums->kl += ls.approx_kl * w;
    stats->tokens += mb.tokens;
    stats->forward_tokens += mb.forward_tokens;
  }
  sums->loss += mini_loss / static_cast<double>(std::max<int64_t>(local, 1));
  DS_ASSIGN_OR_RETURN(const double norm, OptimizerStep(stats->lr));
  sums->grad_norm += norm;
  ++stats->optimizer_steps;
  return absl::OkStatus();
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
  try {
    // This rank's part of the step (all of it in one process), mini-batch by mini-batch.
    const StepPlan plan = PlanStep(batch, c.advantage_norm, c.mini_batches, m.rank(), m.world());
    double adv_sum = 0.0;
    std::vector<std::vector<MicroBatch>> minis = m.PackMiniBatches(batch, plan, &stats, &adv_sum);
    // With one mini-batch, the proximal log-probs are its training forward's (detached): the
    // separate no-grad forward would compute the same values.
    const bool proximal_from_training = minis.size() == 1;
    m.RefreshCompute();
    m.StartLogProbs(minis, proximal_from_training);
    Impl::StepSums sums;
    for (size_t k = 0; k < minis.size(); ++k) {
      if (k > 0) m.RefreshCompute();
      DS_RETURN_IF_ERROR(m.TrainMiniBatch(minis[k], proximal_from_training, &stats, &sums));
    }
    m.ZeroGrads();
    const double parts = static_cast<double>(minis.size());
    const double tokens = static_cast<double>(std::max<int64_t>(stats.tokens, 1));
    stats.loss = sums.loss / parts;
    stats.grad_norm = sums.grad_norm / parts;
    stats.clip_fraction = sums.clip / tokens;
    stats.dual_clip_fraction = sums.dual_clip / tokens;
    stats.approx_kl = sums.kl / tokens;
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

}  // namespace deepsearch
