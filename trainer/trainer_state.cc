// The trainer's state across time and processes: Save and Load of a checkpoint directory,
// and the data-parallel start (SyncWithRankZero). trainer.h states the contracts.

#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "trainer/trainer.h"
#include "trainer/trainer_impl.h"

#include "common/core/files.h"
#include "common/core/hash.h"
#include "common/core/status.h"
#include "common/model/weight_export.h"
#include "common/weights/checkpoint_files.h"
#include "common/weights/safetensors.h"

namespace deepsearch {
namespace {

namespace fs = std::filesystem;
using trainer_internal::ConfigJson;
using trainer_internal::LongTensor;
using trainer_internal::NamedSlot;

constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kReferenceFile[] = "reference.safetensors";
constexpr char kStateFile[] = "trainer_state.json";
constexpr int kStateFormat = 1;

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

}  // namespace

namespace trainer_internal {

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

}  // namespace trainer_internal

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
  DS_ASSIGN_OR_RETURN(const std::string scratch, MakeScratchDirectory(dir));
  const fs::path temp(scratch);
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

  // Into place: the previous checkpoint (if any) stays whole until the new one takes its name.
  return ReplaceDirectory(scratch, dir);
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
